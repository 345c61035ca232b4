package detect

import (
	"context"
	"encoding/json"
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

	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/attune-automation/attunectl/pkg/sandbox"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// childRoleEnv makes TestMain run childMain instead of the tests.
const childRoleEnv = "DETECT_TEST_CHILD_ROLE"

// publicDir is a temporary directory the nobody user can read and run
// scripts from (t.TempDir is 0700 and owned by root).
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "detect-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func requireRoot(t *testing.T) {
	t.Helper()
	testsupport.RequireRoot(t, "it runs commands as another user")
}

// TestRunsAsRunAsUser: as root with RunAs nobody, the command runs as
// nobody, and the result says so.
func TestRunsAsRunAsUser(t *testing.T) {
	requireRoot(t)
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.id", "Id", runtimes.Command{Binary: "id", Args: []string{"-u"}, Pattern: `^65534\n$`})},
		Options{RunAs: "nobody", Environ: func() []string { return []string{"PATH=/usr/bin:/bin"} }})
	if !res.Runtimes[0].Available {
		t.Errorf("id -u did not print nobody's uid: %+v", res.Runtimes[0])
	}
	if res.RunAs == nil || res.RunAs.Name != "nobody" || res.RunAs.UID != 65534 {
		t.Errorf("run_as = %+v", res.RunAs)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"run_as":{"name":"nobody","uid":65534`) {
		t.Errorf("json: %s", b)
	}
}

// TestRootWithoutRunAsRunsAsADynamicUser: as root with no RunAs, commands
// run as the uid attunectl picks, never as root, and find their binaries
// on sensor.path, not on root's PATH (whose /root/... entries that uid
// cannot search).
func TestRootWithoutRunAsRunsAsADynamicUser(t *testing.T) {
	requireRoot(t)
	dir := publicDir(t)
	marker := filepath.Join(dir, "marker")
	writeScript(t, dir, "whoami-probe", "id -u > \""+marker+"\"\n")
	opts := Options{
		Path:    dir + ":/usr/bin:/bin",
		Environ: func() []string { return []string{"PATH=/root/not-searchable:/usr/bin:/bin", "HOME=/root"} },
	}
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.t", "T", cmd("whoami-probe")), always("a.b", "Builtin")}, opts)
	if r := res.Runtimes[0]; !r.Available {
		t.Fatalf("%+v", r)
	}
	if res.RunAs == nil || res.RunAs.UID < sandbox.DynamicUIDFirst || res.RunAs.UID > sandbox.DynamicUIDLast {
		t.Fatalf("RunAs = %+v, want a dynamic uid", res.RunAs)
	}
	b, err := os.ReadFile(marker)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(int(res.RunAs.UID)) {
		t.Errorf("the command ran as %q (%v), want uid %d", b, err, res.RunAs.UID)
	}
	// The environment and the config decide without running anything.
	if res, err := Detect(context.Background(), Input{EnvRuntimes: "python"}, Options{}); err != nil || res.Source != SourceEnv {
		t.Errorf("env source: %v", err)
	}
}

// TestEnvironPeekBySameUser is the attack on /proc/PPID/environ: attunectl
// runs as nobody (a re-executed test binary, its environment holding a
// database password) and a verification command, also nobody, reads its
// parent's, its grandparent's and attunectl's own (by pid) environ. The
// control shows that a plain child of the same user can read it; the
// sandboxed command cannot: attunectl is not dumpable, or (in a box) not
// even visible.
func TestEnvironPeekBySameUser(t *testing.T) {
	requireRoot(t)
	dir := publicDir(t)
	const secret = "peek-secret-4a7f"
	report := filepath.Join(dir, "report")
	writeScript(t, dir, "peek", `gp=$(cut -d' ' -f4 /proc/$PPID/stat)
{ echo "gp=$gp"; for p in $PPID $gp $PEEK_PID; do echo "== $p"; tr '\0' '\n' < /proc/$p/environ 2>&1; tr '\0' '\n' < /proc/$p/cmdline 2>&1; done; } > "$1"
echo "peek 1.0"
`)
	c := exec.Command("/proc/self/exe", "-test.run=^$")
	c.Env = []string{childRoleEnv + "=peek", "PATH=" + dir + ":/usr/bin:/bin", "PEEK_REPORT=" + report,
		"ATTUNE__DATABASE__PASSWORD=" + secret, "ATTUNE__DATABASE__URL=postgres://attune:" + secret + "@db/attune", "PGPASSWORD=" + secret}
	c.Dir = "/"
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var got struct {
		Pid       int
		Control   bool
		Available bool
		Reason    string
	}
	if err := json.Unmarshal(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:], &got); err != nil {
		t.Fatalf("child output: %v\n%s", err, out)
	}
	if !got.Control {
		t.Error("control: a plain child of the same user could not read the environ: the test proves nothing")
	}
	if !got.Available {
		t.Fatalf("the peek command failed: %s", got.Reason)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the command read attunectl's secret:\n%s", b)
	}
	if !strings.Contains(string(b), fmt.Sprintf("== %d\n", got.Pid)) {
		t.Errorf("the command did not try attunectl's environ:\n%s", b)
	}
}

// TestEMFILEIsTransient is re-verification on a host out of file
// descriptors (a child attunectl with a low RLIMIT_NOFILE): python is
// found, then the same detection with every descriptor used up reports it
// as transiently failed — not as missing — and with descriptors free
// again finds it.
func TestEMFILEIsTransient(t *testing.T) {
	dir := fakePATH(t)
	c := exec.Command("/proc/self/exe", "-test.run=^$")
	c.Env = []string{childRoleEnv + "=emfile", "PATH=" + dir + ":/usr/bin:/bin"}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var first, starved, freed RuntimeResult
	if len(lines) < 3 || json.Unmarshal([]byte(lines[len(lines)-3]), &first) != nil ||
		json.Unmarshal([]byte(lines[len(lines)-2]), &starved) != nil || json.Unmarshal([]byte(lines[len(lines)-1]), &freed) != nil {
		t.Fatalf("child output:\n%s", out)
	}
	if !first.Available {
		t.Errorf("first: %+v", first)
	}
	if starved.Available || !starved.Transient || !strings.Contains(starved.Reason, "too many open files") || !strings.Contains(starved.Reason, "transient") {
		t.Errorf("starved: %+v", starved)
	}
	if !freed.Available || freed.Transient {
		t.Errorf("freed: %+v", freed)
	}
}

// childMain is the re-executed test binary.
func childMain(role string) int {
	switch role {
	case "peek":
		// Control: before any sandbox, a plain child of the same user
		// reads this process's environ.
		ctl, _ := exec.Command("/bin/cat", fmt.Sprintf("/proc/%d/environ", os.Getpid())).Output()
		secret := os.Getenv("PGPASSWORD")
		res := Verify(context.Background(), []runtimes.Runtime{rt("a.peek", "Peek", cmd("peek", os.Getenv("PEEK_REPORT")))},
			Options{Environ: func() []string { return append(os.Environ(), fmt.Sprintf("PEEK_PID=%d", os.Getpid())) }, PassthroughEnv: []string{"PEEK_PID"}})
		r := res.Runtimes[0]
		b, _ := json.Marshal(map[string]any{"Pid": os.Getpid(), "Control": strings.Contains(string(ctl), secret), "Available": r.Available, "Reason": r.Reason})
		fmt.Println(string(b))
	case "emfile":
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 64, Max: 64}); err != nil {
			fmt.Println(err)
			return 1
		}
		opts := Options{RunAs: selfRunAs(), Environ: os.Environ}
		rts := []runtimes.Runtime{rt("core.sensor.python", "Python", runtimes.Command{Binary: "python3", Args: []string{"--version"}, Pattern: `Python 3\.`})}
		first := Verify(context.Background(), rts, opts).Runtimes[0]
		var hoard []*os.File
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				break
			}
			hoard = append(hoard, f)
		}
		starved := Verify(context.Background(), rts, opts).Runtimes[0]
		for _, f := range hoard {
			f.Close()
		}
		freed := Verify(context.Background(), rts, opts).Runtimes[0]
		for _, r := range []RuntimeResult{first, starved, freed} {
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
		}
	default:
		fmt.Println("unknown role", role)
		return 2
	}
	return 0
}

// TestCatastrophicPattern: a 19-byte pattern that takes seconds over
// 128 KiB of output is refused for its compiled size; one under the size
// limit that is still slow does not hold detection past the command's
// timeout; one over 4 KiB is refused before running.
func TestCatastrophicPattern(t *testing.T) {
	tmp := t.TempDir()
	script := writeScript(t, tmp, "aaaa", `head -c 65536 /dev/zero | tr '\0' a
head -c 65536 /dev/zero | tr '\0' a >&2
[ -n "$1" ] && sleep "$1"
exit 0
`)
	const catastrophic = `(?:(?:a*){30}){30}b`
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.re", "Re", runtimes.Command{Binary: script, Pattern: catastrophic})}, Options{RunAs: selfRunAs()})
	if c := res.Runtimes[0].Commands[0]; c.Ran || c.Reason != "pattern too complex: 1803 instructions, more than the limit of 500: not run" {
		t.Errorf("%+v", c)
	}

	// 499 instructions: 0.2 s or more over 128 KiB. Given 30 ms, the
	// match is abandoned in time.
	const slow = `(?:a*){248}b`
	input := []byte(strings.Repeat("a", 128<<10))
	start := time.Now()
	if _, finished := matchBefore(regexp.MustCompile(slow), input, time.Now().Add(30*time.Millisecond)); finished {
		t.Errorf("the slow match finished within 30 ms (%v): the test proves nothing", time.Since(start))
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("matchBefore returned after %v, deadline 30ms", d)
	}
	// Through Verify: the command uses most of its 2 s; the match gets
	// what is left, and Verify returns in time either way.
	start = time.Now()
	res = Verify(context.Background(), []runtimes.Runtime{rt("a.re", "Re", runtimes.Command{Binary: script, Args: []string{"1.7"}, Pattern: slow})}, Options{RunAs: selfRunAs(), Timeout: 2 * time.Second})
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("Verify took %v with a 2s timeout", d)
	}
	c := res.Runtimes[0].Commands[0]
	if c.OK() || (c.Reason != "pattern `"+slow+"` did not finish matching within the 2s timeout" && c.Reason != "timed out after 2s") {
		t.Errorf("%+v", c)
	}

	long := strings.Repeat("a", runtimes.MaxPatternLen+1)
	res = Verify(context.Background(), []runtimes.Runtime{rt("a.re", "Re", runtimes.Command{Binary: script, Pattern: long})}, Options{RunAs: selfRunAs()})
	if c := res.Runtimes[0].Commands[0]; c.Ran || c.Reason != "pattern longer than 4096 bytes: not run" {
		t.Errorf("%+v", c)
	}
}

// TestDetectionDeadline: 40 slow commands (more than run at once) against
// a 1 s deadline: Verify returns after about a second; the running ones
// are stopped and the waiting ones reported not run, all transient.
func TestDetectionDeadline(t *testing.T) {
	dir := fakePATH(t)
	var rts []runtimes.Runtime
	for i := range 40 {
		rts = append(rts, rt(fmt.Sprintf("a.s%d", i), fmt.Sprintf("S%d", i), cmd("sleeper", strconv.Itoa(30+i))))
	}
	start := time.Now()
	res := Verify(context.Background(), rts, Options{RunAs: selfRunAs(), Environ: envWithPATH(dir), Deadline: time.Second})
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("Verify took %v with a 1s deadline", d)
	}
	if !res.DeadlineReached {
		t.Error("DeadlineReached is false")
	}
	stopped, notRun := 0, 0
	for _, r := range res.Runtimes {
		c := r.Commands[0]
		switch {
		case c.Reason == "stopped: detection deadline of 1s reached" && c.Ran && !c.NotRun:
			stopped++
		case c.Reason == "not run: detection deadline of 1s reached" && !c.Ran && c.NotRun:
			notRun++
		default:
			t.Errorf("%s: %+v", r.Ref, c)
		}
		if r.Available || !r.Transient || !c.Transient {
			t.Errorf("%s: available %v, transient %v", r.Ref, r.Available, r.Transient)
		}
	}
	// At most 32 run at once; on a loaded host some of those may still be
	// starting when the deadline comes, and are "not run" too.
	if stopped > DefaultMaxParallel || notRun < 40-DefaultMaxParallel || stopped+notRun != 40 {
		t.Errorf("stopped %d, not run %d", stopped, notRun)
	}
}

// TestEmptyAllowListAllowsNothing: an allow-list set to an empty list
// fails closed; nil (unset) allows every binary.
func TestEmptyAllowListAllowsNothing(t *testing.T) {
	tmp := t.TempDir()
	marker := filepath.Join(tmp, "marker")
	bin := t.TempDir()
	writeScript(t, bin, "python3", "touch \""+marker+"\"\necho 'Python 3.99.0'\n")
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.py", "Py", cmd("python3", "--version"))},
		Options{RunAs: selfRunAs(), Environ: envWithPATH(bin), AllowedBinaries: []string{}})
	if c := res.Runtimes[0].Commands[0]; c.Ran || c.Reason != "not in allowed_binaries" {
		t.Errorf("%+v", c)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("an empty allow-list let python3 run")
	}
}

// TestPinnedCommands: a pinned command runs with exactly its arguments;
// the same binary with other arguments (an interpreter given code) does
// not.
func TestPinnedCommands(t *testing.T) {
	tmp := t.TempDir()
	marker := filepath.Join(tmp, "marker")
	bin := t.TempDir()
	py := writeScript(t, bin, "python3", "echo \"$*\" >> \""+marker+"\"\necho 'Python 3.99.0'\n")
	env := envWithPATH(bin)
	cases := []struct {
		name   string
		pinned []string
		allow  []string
		c      runtimes.Command
		runs   bool
	}{
		{"pinned bare", []string{"python3 --version"}, nil, cmd("python3", "--version"), true},
		{"pinned, other args", []string{"python3 --version"}, nil, cmd("python3", "-c", "import os"), false},
		{"pinned, extra arg", []string{"python3 --version"}, nil, cmd("python3", "--version", "x"), false},
		{"pinned absolute allows the bare name resolving to it", []string{py + " --version"}, nil, cmd("python3", "--version"), true},
		{"pinned absolute", []string{py + "   --version"}, nil, cmd(py, "--version"), true},
		{"pinned bare does not allow an absolute path", []string{"python3 --version"}, nil, cmd(py, "--version"), false},
		{"other binary", []string{"python3 --version"}, nil, cmd("node", "--version"), false},
		{"pinned plus empty allow-list", []string{"python3 --version"}, []string{}, cmd("python3", "--version"), true},
		{"allow-list still allows its binaries", []string{"node --version"}, []string{"python3"}, cmd("python3", "-c", "x"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(marker)
			res := Verify(context.Background(), []runtimes.Runtime{rt("a.py", "Py", tc.c)}, Options{RunAs: selfRunAs(), Environ: env, PinnedCommands: tc.pinned, AllowedBinaries: tc.allow})
			c := res.Runtimes[0].Commands[0]
			_, err := os.Stat(marker)
			if ran := err == nil; ran != tc.runs || c.Ran != tc.runs {
				t.Errorf("ran = %v (marker), %v (result), want %v: %+v", ran, c.Ran, tc.runs, c)
			}
			if !tc.runs && c.Reason != "not in allowed_binaries or pinned_commands" {
				t.Errorf("reason = %q", c.Reason)
			}
		})
	}
}

// TestSetsidDaemonDoesNotOutliveTimeout: a command that starts a daemon in
// its own session (out of reach of a process-group kill) and then hangs:
// the timeout ends both, and Verify returns in time.
func TestSetsidDaemonDoesNotOutliveTimeout(t *testing.T) {
	tmp := t.TempDir()
	mark := testsupport.UniqueMark()
	script := writeScript(t, tmp, "daemonize", `setsid sh -c 'touch "$HOME/started"; exec sleep `+mark+`' </dev/null >/dev/null 2>&1 &
while [ ! -e "$HOME/started" ]; do sleep 0.01; done
exec sleep `+mark+`
`)
	start := time.Now()
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.d", "D", cmd(script))}, Options{RunAs: selfRunAs(), Timeout: time.Second})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Verify took %v with a 1s timeout", d)
	}
	if c := res.Runtimes[0].Commands[0]; c.Reason != "timed out after 1s" {
		t.Errorf("%+v", c)
	}
	if left := testsupport.WaitGone(mark, time.Second); len(left) > 0 {
		t.Errorf("the setsid daemon %v outlived the timeout", left)
	}
}
