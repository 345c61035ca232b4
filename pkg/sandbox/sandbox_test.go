//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// publicDir is a temporary directory the nobody user can read and run
// scripts from (t.TempDir is 0700 and owned by root).
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// selfRunAs runs commands as the test process itself: root on purpose as
// root, otherwise that user.
func selfRunAs() string {
	if os.Geteuid() == 0 {
		return Root
	}
	return ""
}

func newSandbox(t *testing.T, runAs string) *Sandbox {
	t.Helper()
	s, err := New(Config{RunAs: runAs, Limits: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var env = []string{"PATH=/usr/bin:/bin", "HOME=/root"}

func run(t *testing.T, s *Sandbox, args ...string) Outcome {
	t.Helper()
	return s.Run(context.Background(), Spec{Path: args[0], Args: args, Env: env}, RunOptions{Timeout: 10 * time.Second, MaxOutput: 64 << 10})
}

func requireRoot(t *testing.T) {
	t.Helper()
	testsupport.RequireRoot(t, "it runs commands as another user")
}

// TestRunAsNobody: as root with run_as nobody, the command's uid, gid,
// groups and HOME are nobody's.
func TestRunAsNobody(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, "nobody")
	dir := publicDir(t)
	sh := script(t, dir, "who", `echo "$(id -u) $(id -g) $(id -G) $HOME"`)
	out := run(t, s, sh)
	if out.StartErr != nil || !out.State.Exited || out.State.ExitCode != 0 {
		t.Fatalf("%+v %v", out, out.StartErr)
	}
	want := "65534 65534 65534 /nonexistent"
	if got := strings.TrimSpace(string(out.Stdout)); got != want {
		t.Errorf("child ran as %q, want %q", got, want)
	}
	if out.User.Name != "nobody" || out.User.UID != 65534 {
		t.Errorf("outcome user = %+v", out.User)
	}
}

// TestRootPicksADynamicUser: as root with no run_as, commands run as a uid
// of the dynamic range that no user or group has, with a private HOME
// only it can enter and sensor.path as PATH, never root's; run_as root is
// explicit consent.
func TestRootPicksADynamicUser(t *testing.T) {
	requireRoot(t)
	d, err := New(Config{Path: "/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	u := d.User()
	if !d.Dynamic() || u.UID < DynamicUIDFirst || u.UID > DynamicUIDLast || u.Name != DynamicUserName {
		t.Fatalf("user = %+v, dynamic = %v", u, d.Dynamic())
	}
	got := run(t, d, "/bin/sh", "-c", `echo "$(id -u) $(id -g) $HOME"; stat -c '%u %a' "$HOME"`)
	want := fmt.Sprintf("%d %d %s\n%d 700", u.UID, u.UID, u.Home, u.UID)
	if strings.TrimSpace(string(got.Stdout)) != want {
		t.Errorf("child saw %q, want %q (stderr %q)", got.Stdout, want, got.Stderr)
	}
	envd := d.Env([]string{"PATH=/root/.pyenv/shims:/usr/bin", "HOME=/root", "ATTUNE__DATABASE__URL=postgres://x"}, nil)
	if p := PathOf(envd); p != "/usr/bin:/bin" || slices.Contains(envd, "ATTUNE__DATABASE__URL=postgres://x") {
		t.Errorf("Env = %q: want sensor.path as PATH and nothing secret", envd)
	}
	// Run as itself, attunectl's own PATH stays.
	if p := PathOf(newSandbox(t, Root).Env([]string{"PATH=/opt/x:/usr/bin"}, nil)); p != "/opt/x:/usr/bin" {
		t.Errorf("run_as root: PATH = %q", p)
	}
	requireRoot(t)
	s := newSandbox(t, Root)
	out := run(t, s, "/usr/bin/id", "-u")
	if strings.TrimSpace(string(out.Stdout)) != "0" || s.User().Name != "root" {
		t.Errorf("run_as root: %q %+v", out.Stdout, s.User())
	}
	// A non-root attunectl cannot choose another user.
	_, err = New(Config{RunAs: "root", euid: func() int { return 65534 }})
	if err == nil || !strings.Contains(err.Error(), "only root can run commands as another user") {
		t.Errorf("non-root choosing root: %v", err)
	}
	if _, err := New(Config{RunAs: "no-such-user-xyz"}); err == nil || !strings.Contains(err.Error(), `looking up user "no-such-user-xyz"`) {
		t.Errorf("unknown user: %v", err)
	}
}

// TestSetsidDaemonIsKilled: a command that double-forks a daemon into its
// own session (out of the process group) and exits at once: the daemon is
// found through the subreaper and killed, and Run returns at once.
func TestSetsidDaemonIsKilled(t *testing.T) {
	requireRoot(t)
	dir := publicDir(t)
	pidFile := filepath.Join(dir, "pid")
	sh := script(t, dir, "daemonize", `setsid sh -c 'echo $$ > "$1"; exec sleep 60' daemon "$1" </dev/null >/dev/null 2>&1 &
while [ ! -s "$1" ]; do sleep 0.01; done
echo started
`)
	for _, user := range []string{"nobody", Root} {
		t.Run(user, func(t *testing.T) {
			os.Remove(pidFile)
			s := newSandbox(t, user)
			start := time.Now()
			out := run(t, s, sh, pidFile)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Run took %v", d)
			}
			if strings.TrimSpace(string(out.Stdout)) != "started" {
				t.Fatalf("%+v", out)
			}
			b, _ := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if pid == 0 {
				t.Fatal("no daemon pid")
			}
			if alive(pid) {
				t.Errorf("the setsid daemon %d outlived its command", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
}

// TestStopTerminatesThenKills: a long-lived process that ignores SIGTERM
// and has a setsid grandchild is ended by Stop after the grace, with all
// its descendants; one that exits on SIGTERM ends at once.
func TestStopTerminatesThenKills(t *testing.T) {
	requireRoot(t)
	dir := publicDir(t)
	pidFile := filepath.Join(dir, "pid")
	stubborn := script(t, dir, "stubborn", `trap '' TERM
setsid sleep 120 </dev/null >/dev/null 2>&1 &
echo $! > "$1"
echo ready
while :; do sleep 1; done
`)
	s := newSandbox(t, "nobody")
	r, w, _ := os.Pipe()
	p, err := s.Start(context.Background(), Spec{Path: stubborn, Args: []string{"stubborn", pidFile}, Env: env, Stdout: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := r.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q %v", buf, err)
	}
	b, _ := os.ReadFile(pidFile)
	grandchild, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	start := time.Now()
	st := p.Stop(300 * time.Millisecond)
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if st.Exited || st.Signal != int(syscall.SIGKILL) {
		t.Errorf("state = %+v", st)
	}
	if alive(p.Pid()) || alive(grandchild) {
		t.Errorf("alive after Stop: command %v, grandchild %v", alive(p.Pid()), alive(grandchild))
	}

	// A supervisor's sensor: extra environment, stdout read line by line.
	polite := script(t, dir, "polite", "trap 'exit 0' TERM\necho \"id=$ATTUNE_SENSOR_ID home=$HOME\"\nwhile :; do sleep 0.05; done\n")
	r, w, _ = os.Pipe()
	p, err = s.Start(context.Background(), Spec{Path: polite, Args: []string{"polite"}, Env: append(env, "ATTUNE_SENSOR_ID=42"), Stdout: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 64)
	n, _ := r.Read(line)
	if got := string(line[:n]); got != "id=42 home=/nonexistent\n" {
		t.Errorf("sensor printed %q", got)
	}
	start = time.Now()
	if st := p.Stop(5 * time.Second); !st.Exited || st.ExitCode != 0 || time.Since(start) > 2*time.Second {
		t.Errorf("polite stop: %+v after %v", st, time.Since(start))
	}
}

// TestLimitsApply: the command sees the configured limits, and no_new_privs.
func TestLimitsApply(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{RunAs: "nobody", Limits: Limits{OpenFiles: 77, Processes: 333, MemoryBytes: 512 << 20, CPUSeconds: 9}})
	if err != nil {
		t.Fatal(err)
	}
	dir := publicDir(t)
	// The command's own limits ($$): the process limit is set on it with
	// prlimit(2) just after its start (see the package doc), so a child it
	// forks in its first microseconds may miss it; the command itself never
	// does, which is what is read here after a moment.
	sh := script(t, dir, "limits", `sleep 0.2
grep -E '^(Max open files|Max processes|Max data size|Max cpu time)' /proc/$$/limits | tr -s ' '
grep NoNewPrivs /proc/$$/status
`)
	out := run(t, s, sh)
	got := string(out.Stdout)
	for _, want := range []string{"Max cpu time 9 9 seconds", "Max data size 536870912 536870912 bytes", "Max processes 333 333 processes", "Max open files 77 77 files", "NoNewPrivs:\t1"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

// TestStartErrors: a missing binary is a permanent start error; the exit
// status and the signal of a command are reported.
func TestStartErrors(t *testing.T) {
	s := newSandbox(t, selfRunAs())
	out := run(t, s, "/nonexistent/binary")
	if out.StartErr == nil || out.StartErr.Transient || !errors.Is(out.StartErr, syscall.ENOENT) {
		t.Errorf("missing binary: %+v", out.StartErr)
	}
	out = run(t, s, "/bin/sh", "-c", "exit 3")
	if !out.State.Exited || out.State.ExitCode != 3 {
		t.Errorf("exit 3: %+v", out.State)
	}
	// The helper's status pipe is not the command's to write: a forged
	// "exit 0" on fd 3 changes nothing.
	out = run(t, s, "/bin/sh", "-c", `echo '{"done":true,"exited":true,"code":0}' >&3; ls -l /proc/$$/fd/ | grep -c pipe; exit 7`)
	if !out.State.Exited || out.State.ExitCode != 7 || !strings.Contains(string(out.Stderr), "Bad file descriptor") {
		t.Errorf("forged status: %+v, stderr %q", out.State, out.Stderr)
	}
	out = run(t, s, "/bin/sh", "-c", "kill -9 $$")
	if out.State.Exited || out.State.Signal != 9 {
		t.Errorf("kill -9: %+v", out.State)
	}
	if !IsTransient(&StartError{Op: "x", Err: syscall.EMFILE, Transient: true}) || !IsTransient(syscall.EAGAIN) || IsTransient(syscall.ENOENT) {
		t.Error("IsTransient")
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// BenchmarkRun measures what the helper costs per command: /bin/true run
// through the sandbox, against the same started directly with os/exec.
func BenchmarkRun(b *testing.B) {
	s, err := New(Config{RunAs: Root, Limits: DefaultLimits()})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sandbox", func(b *testing.B) {
		for b.Loop() {
			if o := s.Run(context.Background(), Spec{Path: "/bin/true", Args: []string{"true"}, Env: env}, RunOptions{Timeout: 10 * time.Second, MaxOutput: 1024}); !o.State.Exited {
				b.Fatal(o)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
