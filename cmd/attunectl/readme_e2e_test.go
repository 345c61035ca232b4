package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var updateReadme = flag.Bool("update", false, "rewrite the README's quick-start output from this run")

// readmeBlock is one fenced ```sh block of the README.
type readmeBlock struct {
	line    int
	section string // the "## " heading it is under
	code    string
}

// readmePath is the README of this checkout.
var readmePath = filepath.Join("..", "..", "README.md")

// readmeShellBlocks returns the README's ```sh blocks. Those are the
// commands a reader is meant to paste; ```bash and ```text blocks are
// illustrations (developer commands, output) and are not run.
func readmeShellBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &readmeBlock{line: n, section: section}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// readmeEnv is what a new user's shell has: the system PATH (with Go, and
// without attunectl), a HOME of their own, no ATTUNE_ settings — the
// database is the embedded default — and the Go caches they already have
// (so that `go install` does not download the world again).
func readmeEnv(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, kv := range embeddedEnv(t) {
		if strings.HasPrefix(kv, "ATTUNE__SENSOR__RUN_AS=") {
			continue // as written: the README sets no run_as
		}
		out = append(out, kv)
	}
	for _, name := range []string{"GOMODCACHE", "GOCACHE"} {
		v, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		out = append(out, name+"="+strings.TrimSpace(string(v)))
	}
	return append(out, "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
}

// TestReadmeExamples runs every ```sh block of the README in order, as
// written, in one shell as a reader would type them: the Quick start in the
// clone (it installs attunectl with `go install` and puts it on PATH, as
// the README says), then the tour in a directory of its own. Each block
// must succeed (blocks show expected non-zero statuses with `|| …` as a user
// would script them). The one command that runs until Ctrl-C, the Quick
// start's `attunectl sensor run`, gets SIGINT once its sensor has emitted
// events, as the reader would press Ctrl-C. What the Quick start printed,
// with the values that change from run to run fixed, must be the README's
// sample output (-update rewrites it).
func TestReadmeExamples(t *testing.T) {
	blocks := readmeShellBlocks(t)
	if len(blocks) < 10 {
		t.Fatalf("found %d ```sh blocks in README.md; the tour should have more", len(blocks))
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tour := t.TempDir()
	// As root, `sensor add --example` writes /var/lib/attunectl/example, as
	// the README says; leave the machine as the test found it.
	const rootExample = "/var/lib/attunectl/example"
	if _, err := os.Stat(rootExample); os.Geteuid() == 0 && os.IsNotExist(err) {
		t.Cleanup(func() { os.RemoveAll(rootExample) })
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\ncd " + strconv.Quote(repo) + "\n")
	inTour := false
	for _, b := range blocks {
		if b.section != "Quick start" && !inTour {
			inTour = true
			script.WriteString("cd " + strconv.Quote(tour) + "\n")
		}
		fmt.Fprintf(&script, "echo '@@ README.md:%d' >&2\n%s", b.line, b.code)
	}
	script.WriteString("echo '@@ done' >&2\n")

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = repo
	cmd.Env = readmeEnv(t)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Ctrl-C for the Quick start's worker once its sensor has run a while.
	interrupted := false
	var started time.Time
	giveUp := time.Now().Add(4 * time.Minute)
	for !interrupted {
		select {
		case err := <-done:
			t.Fatalf("the README's commands ended before the Quick start's worker ran its sensor: %v\n%s", err, out)
		case <-time.After(100 * time.Millisecond):
		}
		if started.IsZero() && strings.Contains(out.String(), `msg="sensor process started"`) {
			started = time.Now()
		}
		if !started.IsZero() && time.Since(started) > 5*time.Second {
			pid := childRunning(t, cmd.Process.Pid, "sensor", "run")
			if pid == 0 {
				t.Fatalf("no `attunectl sensor run` under the README's shell:\n%s", out)
			}
			if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			interrupted = true
		}
		if time.Now().After(giveUp) {
			t.Fatalf("the Quick start's worker never started its sensor:\n%s", out)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("a README block failed (the last @@ line names it): %v\n%s", err, lastLines(out.String(), 60))
	}

	got := quickstartOutput(out.String())
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)(<!-- output: quickstart -->\n```text\n)(.*?)(```)")
	m := re.FindSubmatchIndex(readme)
	if m == nil {
		t.Fatal("README.md has no <!-- output: quickstart --> block")
	}
	if *updateReadme {
		readme = append(append(append([]byte{}, readme[:m[4]]...), got...), readme[m[5]:]...)
		if err := os.WriteFile(readmePath, readme, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want := string(readme[m[4]:m[5]]); want != got {
		t.Errorf("the README's Quick start output differs from what it printed (rewrite with -update if intended)\n--- README\n%s--- printed\n%s", want, got)
	}
}

// childRunning finds a process below parent whose arguments end in args
// (attunectl sensor run), or 0.
func childRunning(t *testing.T, parent int, args ...string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(argv) != len(args)+1 || filepath.Base(argv[0]) != "attunectl" || strings.Join(argv[1:], " ") != strings.Join(args, " ") {
			continue
		}
		for p := pid; p > 1; p = parentOf(p) {
			if p == parent {
				return pid
			}
		}
	}
	return 0
}

func parentOf(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold blanks and parentheses.
	s := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// quickstartMessages are the lines of the Quick start's output the README
// shows: what a new user needs to see, whatever the host's runtimes.
var quickstartMessages = regexp.MustCompile(`^(example program written|sensor example\.hello created|trigger example\.hello created)|msg="(no database configured|runtimes detected|registered sensor worker|claimed sensor|sensor process started|stopping sensor worker|sensor process stopped|released sensors|deregistered sensor worker)`)

// quickstartOutput is the Quick start's output as the README shows it: the
// lines of quickstartMessages, without timestamps, with the values that
// change from run to run, user to user and host to host fixed.
func quickstartOutput(all string) string {
	_, rest, _ := strings.Cut(all, "@@ README.md:")
	host, _ := os.Hostname()
	exampleDir := regexp.MustCompile(`(/var/lib/attunectl|/[^ "]*/\.local/share/attunectl)/example`)
	replace := []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`^time=\S+ `), ""},
		{regexp.MustCompile(`data_dir=\S+`), "data_dir=~/.local/state/attunectl/postgres"},
		{regexp.MustCompile(`duration=\S+`), "duration=20ms"},
		{regexp.MustCompile(`instance=\S+`), "instance=7KX3P5J2QY4ZB6WDM8N1RHTC0A"},
		{regexp.MustCompile(`name=sensor-` + regexp.QuoteMeta(host) + `\b`), "name=sensor-myhost"},
		{regexp.MustCompile(`host=` + regexp.QuoteMeta(host) + `\b`), "host=myhost"},
	}
	var b strings.Builder
	for _, line := range strings.Split(rest, "\n") {
		if strings.HasPrefix(line, "@@ README.md:") && b.Len() > 0 {
			break // the end of the Quick start's commands
		}
		if !quickstartMessages.MatchString(line) {
			continue
		}
		line = exampleDir.ReplaceAllString(line, "~/.local/share/attunectl/example")
		for _, r := range replace {
			line = r.re.ReplaceAllString(line, r.with)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
