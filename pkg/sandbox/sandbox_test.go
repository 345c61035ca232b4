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
	want := "65534 65534 65534 " + homeOf(s)
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
	// In a box, each command gets a uid of the range of its own (the
	// outcome names it); without one, the sandbox's.
	if got.User.UID < DynamicUIDFirst || got.User.UID > DynamicUIDLast {
		t.Errorf("ran as %+v, want a uid of the dynamic range", got.User)
	}
	u = got.User
	want := fmt.Sprintf("%d %d %s\n%d 700", u.UID, u.UID, homeOf(d), u.UID)
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
// killed with the box (or found through the subreaper without one), and
// Run returns at once.
func TestSetsidDaemonIsKilled(t *testing.T) {
	requireRoot(t)
	dir := publicDir(t)
	for _, user := range []string{"nobody", Root} {
		t.Run(user, func(t *testing.T) {
			mark := testsupport.UniqueMark()
			sh := script(t, dir, "daemonize-"+user, `setsid sh -c 'echo $$ > "$HOME/pid"; exec sleep `+mark+`' </dev/null >/dev/null 2>&1 &
while [ ! -s "$HOME/pid" ]; do sleep 0.01; done
echo started
`)
			s := newSandbox(t, user)
			start := time.Now()
			out := run(t, s, sh)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Run took %v", d)
			}
			if strings.TrimSpace(string(out.Stdout)) != "started" {
				t.Fatalf("%+v", out)
			}
			if pids := testsupport.ProcessesWith(mark); len(pids) > 0 {
				t.Errorf("the setsid daemon %v outlived its command", pids)
				for _, p := range pids {
					syscall.Kill(p, syscall.SIGKILL)
				}
			}
		})
	}
}

// homeOf is the HOME commands of s get.
func homeOf(s *Sandbox) string {
	if s.Isolation().Box {
		return BoxHome
	}
	return s.User().Home
}

// TestStopTerminatesThenKills: a long-lived process that ignores SIGTERM
// and has a setsid grandchild is ended by Stop after the grace, with all
// its descendants; one that exits on SIGTERM ends at once.
func TestStopTerminatesThenKills(t *testing.T) {
	requireRoot(t)
	dir := publicDir(t)
	mark := testsupport.UniqueMark()
	stubborn := script(t, dir, "stubborn", `trap '' TERM
setsid sleep `+mark+` </dev/null >/dev/null 2>&1 &
echo ready
while :; do sleep 1; done
`)
	s := newSandbox(t, "nobody")
	r, w, _ := os.Pipe()
	p, err := s.Start(context.Background(), Spec{Path: stubborn, Args: []string{"stubborn"}, Env: env, Stdout: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := r.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q %v", buf, err)
	}
	var grandchild []int
	for i := 0; i < 200 && len(grandchild) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		grandchild = testsupport.ProcessesWith(mark)
	}
	if len(grandchild) != 1 {
		t.Fatalf("grandchild: %v", grandchild)
	}
	start := time.Now()
	st := p.Stop(300 * time.Millisecond)
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if st.Exited || st.Signal != int(syscall.SIGKILL) {
		t.Errorf("state = %+v", st)
	}
	if testsupport.Alive(p.Pid()) || testsupport.Alive(grandchild[0]) {
		t.Errorf("alive after Stop: command %v, grandchild %v", testsupport.Alive(p.Pid()), testsupport.Alive(grandchild[0]))
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
	if got := string(line[:n]); got != "id=42 home="+homeOf(s)+"\n" {
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
	// The command's own limits ($$), each set before its first instruction.
	sh := script(t, dir, "limits", `grep -E '^(Max open files|Max processes|Max data size|Max cpu time)' /proc/$$/limits | tr -s ' '
grep NoNewPrivs /proc/$$/status
`)
	out := run(t, s, sh)
	got := string(out.Stdout)
	wants := []string{"Max cpu time 9 9 seconds", "Max data size 536870912 536870912 bytes", "Max open files 77 77 files", "NoNewPrivs:\t1"}
	if !s.Isolation().Cgroups {
		// In cgroups of its own, the box's pids.max bounds the processes
		// (TestBoxCgroups); otherwise the user's process limit.
		wants = append(wants, "Max processes 333 333 processes")
	}
	for _, want := range wants {
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

// requireBox skips a test of the box where the host cannot make one (never
// in CI, whose hosts can).
func requireBox(t *testing.T, s *Sandbox) {
	t.Helper()
	if iso := s.Isolation(); !iso.Box {
		if os.Getenv("CI") != "" {
			t.Fatalf("no box on a CI host: %v", iso.Off)
		}
		t.Skipf("this host makes no box: %v", iso.Off)
	}
}

// TestBoxIsolates: a command in its box reads the hidden paths as empty,
// sees only its own processes, has a /tmp and HOME of its own, and cannot
// kill or freeze its helper (PID 1); what it leaves in /tmp is gone after.
func TestBoxIsolates(t *testing.T) {
	dir, err := os.MkdirTemp(".", "hide-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dir, _ = filepath.Abs(dir)
	secretFile := filepath.Join(dir, "config.yaml")
	secretDir := filepath.Join(dir, "pgdata")
	os.Mkdir(secretDir, 0o700)
	os.WriteFile(secretFile, []byte("password: hunter2\n"), 0o600)
	os.WriteFile(filepath.Join(secretDir, "attunectl.pgpass"), []byte("*:*:*:*:hunter3\n"), 0o600)
	hostTmp, err := os.CreateTemp("", "host-marker-")
	if err != nil {
		t.Fatal(err)
	}
	hostTmp.Close()
	t.Cleanup(func() { os.Remove(hostTmp.Name()) })

	s, err := New(Config{RunAs: selfRunAs(), Limits: DefaultLimits(), Hide: []string{secretFile, secretDir}})
	if err != nil {
		t.Fatal(err)
	}
	requireBox(t, s)
	out := run(t, s, "/bin/sh", "-c", `cat "$1"; ls -A "$2"; cat "$2/attunectl.pgpass" 2>/dev/null
echo "procs=$(ls /proc | grep -c '^[0-9]')"
[ -e "`+hostTmp.Name()+`" ] && echo "host tmp visible"
echo x > "$HOME/f" && echo "home=$HOME"
echo left > /tmp/left-behind
kill -9 1; kill -STOP 1; echo alive`, "sh", secretFile, secretDir)
	got := string(out.Stdout)
	if strings.Contains(got, "hunter") || strings.Contains(got, "pgpass") {
		t.Errorf("a hidden path was readable:\n%s", got)
	}
	if strings.Contains(got, "host tmp visible") {
		t.Errorf("the host's /tmp was visible:\n%s", got)
	}
	for _, want := range []string{"home=" + BoxHome, "alive"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s\nstderr: %s", want, got, out.Stderr)
		}
	}
	var procs int
	fmt.Sscanf(got[strings.Index(got, "procs=")+6:], "%d", &procs)
	if procs < 2 || procs > 5 {
		t.Errorf("the command saw %d processes, want its own few (helper, shell, ls, grep)", procs)
	}
	if !out.State.Exited || out.State.ExitCode != 0 {
		t.Errorf("state %v, stderr %s", out.State, out.Stderr)
	}
	if _, err := os.Stat("/tmp/left-behind"); err == nil {
		os.Remove("/tmp/left-behind")
		t.Error("a file the command wrote to its /tmp reached the host's")
	}
	if b, _ := os.ReadFile(secretFile); string(b) != "password: hunter2\n" {
		t.Errorf("the hidden file changed: %q", b)
	}
}

// TestBoxDiesWithItsHelper: whatever kills the helper (the OOM killer, an
// operator's kill -9) kills everything in the box, a setsid daemon too.
func TestBoxDiesWithItsHelper(t *testing.T) {
	s := newSandbox(t, selfRunAs())
	requireBox(t, s)
	mark := testsupport.UniqueMark()
	r, w, _ := os.Pipe()
	p, err := s.Start(context.Background(), Spec{Path: "/bin/sh", Args: []string{"sh", "-c", `setsid sh -c 'exec sleep ` + mark + `' </dev/null >/dev/null 2>&1 & echo ready; exec sleep ` + mark}, Env: env, Stdout: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 6)
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for i := 0; i < 200 && len(pids) < 2; i++ {
		time.Sleep(10 * time.Millisecond)
		pids = slices.DeleteFunc(testsupport.ProcessesWith(mark), func(pid int) bool { return pid == p.cmd.Process.Pid })
	}
	if len(pids) != 2 {
		t.Fatalf("want the command and its daemon, found %v", pids)
	}
	_ = p.cmd.Process.Kill()
	st := p.Wait()
	if st.Problem == "" {
		t.Errorf("state %+v: want the helper's end reported", st)
	}
	for i := 0; i < 200 && len(testsupport.ProcessesWith(mark)) > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if left := testsupport.ProcessesWith(mark); len(left) > 0 {
		t.Errorf("outlived their helper: %v", left)
		for _, p := range left {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// TestBoxCgroups: as root each box has cgroups of its own with the
// process and memory limits, which the command is born in and which are
// removed with the box.
func TestBoxCgroups(t *testing.T) {
	testsupport.RequireRoot(t, "only root makes cgroups")
	s, err := New(Config{RunAs: "nobody", Limits: Limits{Processes: 57, MemoryBytes: 300 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Isolation().Cgroups {
		if os.Getenv("CI") != "" {
			t.Fatalf("no cgroups on a CI host: %v", s.Isolation().Off)
		}
		t.Skipf("no cgroups here: %v", s.Isolation().Off)
	}
	out := run(t, s, "/bin/sh", "-c", `while IFS=: read -r n ctl path; do
  case "$ctl" in
  pids) echo "pids $path $(cat /sys/fs/cgroup/pids$path/pids.max)";;
  memory) echo "memory $path $(cat /sys/fs/cgroup/memory$path/memory.limit_in_bytes)";;
  "") [ -f /sys/fs/cgroup$path/pids.max ] && echo "pids $path $(cat /sys/fs/cgroup$path/pids.max)" && echo "memory $path $(cat /sys/fs/cgroup$path/memory.max)";;
  esac
done < /proc/self/cgroup`)
	got := string(out.Stdout)
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		want := map[string]string{"pids": "57", "memory": strconv.Itoa(300 << 20)}[f[0]]
		if f[2] != want || !strings.Contains(f[1], "/attunectl/box-") {
			t.Errorf("%s cgroup %s limit %s, want a box's with %s", f[0], f[1], f[2], want)
		}
		if cgroupsV2() {
			dirs = append(dirs, "/sys/fs/cgroup"+f[1])
		} else {
			dirs = append(dirs, "/sys/fs/cgroup/"+f[0]+f[1])
		}
	}
	if len(dirs) != 2 {
		t.Fatalf("want the pids and memory cgroups, the command printed %q (stderr %q)", got, out.Stderr)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s is still there after the box ended", d)
		}
	}
}

func cgroupsV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// TestMayRead: a path is judged as the user would meet it: a file in a
// directory the user cannot enter is unreadable however it is mode;
// execute needs the x bit for the user's class.
func TestMayRead(t *testing.T) {
	dir, err := os.MkdirTemp("", "mayread-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o755)
	f := filepath.Join(open, "f")
	os.WriteFile(f, []byte("x"), 0o644)
	x := filepath.Join(open, "x")
	os.WriteFile(x, []byte("x"), 0o755)
	os.Chmod(dir, 0o711)
	nobody := User{Name: "nobody", UID: 65534, GID: 65534}
	me := User{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	cases := []struct {
		u          User
		path       string
		exec, want bool
	}{
		{nobody, f, false, true},
		{nobody, f, true, false},
		{nobody, x, true, true},
		{nobody, filepath.Join(open, "missing"), false, false},
		{me, f, false, true},
	}
	for _, c := range cases {
		if got := c.u.MayRead(c.path, c.exec); got != c.want {
			t.Errorf("%s MayRead(%s, exec %v) = %v, want %v", c.u.Name, c.path, c.exec, got, c.want)
		}
	}
	os.Chmod(dir, 0o700)
	if nobody.MayRead(f, false) {
		t.Error("nobody may read a file below a directory only its owner may enter")
	}
}

// TestEachBoxHasItsOwnUID: as root without run_as, two commands running at
// once run as two different uids of the dynamic range, and a uid is free
// again once its box is gone.
func TestEachBoxHasItsOwnUID(t *testing.T) {
	requireRoot(t)
	s, err := New(Config{Path: "/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	requireBox(t, s)
	var uids []uint32
	var procs []*Process
	for range 2 {
		r, w, _ := os.Pipe()
		p, err := s.Start(context.Background(), Spec{Path: "/bin/sh", Args: []string{"sh", "-c", "id -u; exec sleep 60"}, Env: env, Stdout: w})
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		buf := make([]byte, 16)
		n, _ := r.Read(buf)
		r.Close()
		uid, _ := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
		if uint32(uid) != p.User().UID || uid < DynamicUIDFirst || uid > DynamicUIDLast {
			t.Errorf("command ran as uid %d, its process says %+v", uid, p.User())
		}
		uids = append(uids, uint32(uid))
	}
	if uids[0] == uids[1] {
		t.Errorf("two sensors share uid %d", uids[0])
	}
	for _, p := range procs {
		p.Kill()
		p.Wait()
	}
	boxUIDs.Lock()
	held := len(boxUIDs.held)
	boxUIDs.Unlock()
	if held != 0 {
		t.Errorf("%d uids still held after their boxes ended", held)
	}
}

// TestBoxKeepsAProgramRightInTmp: a script straight in /tmp (not in a
// directory of its own) still runs in a box, whose /tmp is otherwise its
// own.
func TestBoxKeepsAProgramRightInTmp(t *testing.T) {
	s := newSandbox(t, selfRunAs())
	requireBox(t, s)
	f, err := os.CreateTemp("", "top-level-*.sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	f.WriteString("#!/bin/sh\necho kept\n")
	f.Close()
	os.Chmod(f.Name(), 0o755)
	if filepath.Dir(f.Name()) != "/tmp" {
		t.Skipf("the temporary directory is %s, not /tmp", filepath.Dir(f.Name()))
	}
	out := run(t, s, f.Name())
	if strings.TrimSpace(string(out.Stdout)) != "kept" {
		t.Errorf("%+v %v stderr %s", out.State, out.StartErr, out.Stderr)
	}
}
