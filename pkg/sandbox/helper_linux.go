package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The helper is attunectl's own binary, re-executed through /proc/self/exe
// with this argv[0] and first argument. Its one argument after that is a
// JSON helperConfig (no secrets: the argv of a command from the database
// and the limits). fd 3 is the status pipe back to attunectl.
//
// The helper does not exec the command itself: it starts the exec shim
// (the same binary, argv[0] shimArg0), already as the command's user, which
// sets the process limit on itself, drops what capabilities it inherited
// and then execs the command in its place. So every limit holds from the
// command's first instruction, and the user's process count is checked at
// the exec, not after. The shim reports a failed exec on fd 3 (closed by a
// successful one), as os.StartProcess does.
const (
	helperArg0  = "attunectl-sandbox"
	helperMagic = "--attunectl-sandbox-v2"
	shimArg0    = "attunectl-sandbox-exec"
	shimMagic   = "--attunectl-sandbox-exec-v2"
	statusFD    = 3
)

// helperConfig is what the helper needs to start the command.
type helperConfig struct {
	Path   string   `json:"path"`
	Args   []string `json:"args"`
	Dir    string   `json:"dir"`
	Limits Limits   `json:"limits"`
	// GraceMS is how long the helper waits after forwarding SIGTERM before
	// it kills everything itself (when attunectl died and cannot).
	GraceMS int64 `json:"grace_ms"`
	// Box, when set, is the box the helper is PID 1 of (box_linux.go).
	Box *boxConfig `json:"box,omitempty"`
	// Cred, when set, is whom the helper (root) starts the command as.
	Cred *credential `json:"cred,omitempty"`
	// Cgroups are the cgroup directories the helper joins before the
	// command starts, so that the command is born in them.
	Cgroups []string `json:"cgroups,omitempty"`
	// Probe: set up the box, start nothing, report success.
	Probe bool `json:"probe,omitempty"`
}

// credential is a user to switch to.
type credential struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// execConfig is what the exec shim needs: the command, and the process
// limit it sets on itself before it becomes the command.
type execConfig struct {
	Path      string   `json:"path"`
	Args      []string `json:"args"`
	Processes uint64   `json:"processes"`
}

// helperStatus is one JSON line on the status pipe: first the start (Pid
// or StartError), then the end (Exited/Code or Signal).
type helperStatus struct {
	Pid        int    `json:"pid,omitempty"`
	StartError string `json:"start_error,omitempty"`
	Op         string `json:"op,omitempty"`
	Errno      int    `json:"errno,omitempty"`
	Done       bool   `json:"done,omitempty"`
	Exited     bool   `json:"exited,omitempty"`
	Code       int    `json:"code,omitempty"`
	Signal     int    `json:"signal,omitempty"`
}

// init turns a process started as the helper into the helper before main
// runs, in attunectl and in every test binary that links this package.
func init() {
	if len(os.Args) == 3 && os.Args[0] == helperArg0 && os.Args[1] == helperMagic {
		os.Exit(helperMain(os.Args[2]))
	}
	if len(os.Args) == 3 && os.Args[0] == shimArg0 && os.Args[1] == shimMagic {
		os.Exit(shimMain(os.Args[2]))
	}
}

// shimMain becomes the command: limits, no capabilities, exec. It returns
// only when the exec failed, after writing why on fd 3.
func shimMain(arg string) int {
	syscall.CloseOnExec(statusFD)
	report := func(err error) int {
		var errno syscall.Errno
		errors.As(err, &errno)
		b, _ := json.Marshal(helperStatus{StartError: err.Error(), Errno: int(errno)})
		_, _ = os.NewFile(statusFD, "status").Write(b)
		return 127
	}
	var cfg execConfig
	if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
		return report(err)
	}
	if cfg.Processes > 0 {
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(unix.RLIMIT_NPROC, &cur); err != nil {
			return report(err)
		}
		v := min(cfg.Processes, cur.Max)
		if err := syscall.Setrlimit(unix.RLIMIT_NPROC, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
			return report(err)
		}
	}
	// Capabilities are per thread: drop the ambient ones (the helper's
	// right to mount in its user namespace) on the thread that execs.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return report(err)
	}
	return report(syscall.Exec(cfg.Path, cfg.Args, os.Environ()))
}

func helperMain(arg string) int {
	// The status pipe must not reach the command: inherited, it would let
	// the command write a forged end ("exit 0") for attunectl to read.
	syscall.CloseOnExec(statusFD)
	status := os.NewFile(statusFD, "status")
	send := func(s helperStatus) {
		b, _ := json.Marshal(s)
		_, _ = status.Write(append(b, '\n'))
	}
	fail := func(op string, err error) int {
		var errno syscall.Errno
		errors.As(err, &errno)
		send(helperStatus{StartError: err.Error(), Op: op, Errno: int(errno)})
		return 127
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
		return fail("reading the sandbox configuration", err)
	}
	// SIGTERM and friends are handled from here on: a stop request that
	// arrives while the command starts is not lost.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail("becoming a subreaper", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("setting no_new_privs", err)
	}
	if cfg.Box != nil {
		if err := setupBox(*cfg.Box); err != nil {
			return fail("setting up the sandbox's namespaces", err)
		}
	}
	// Joined before the command exists: it is born in them.
	for _, dir := range cfg.Cgroups {
		if err := os.WriteFile(dir+"/cgroup.procs", []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return fail("joining the sandbox's cgroup", err)
		}
	}
	if cfg.Probe {
		send(helperStatus{Done: true, Exited: true})
		return 0
	}
	// Inherited by the command: applied before it exists. syscall.Setrlimit
	// (not prlimit) so that Go does not restore its startup RLIMIT_NOFILE
	// in the child. The process limit is the shim's (it is per user, and
	// would count the helper's threads).
	for _, l := range []struct {
		res int
		v   uint64
	}{{syscall.RLIMIT_NOFILE, cfg.Limits.OpenFiles}, {unix.RLIMIT_DATA, cfg.Limits.MemoryBytes}, {syscall.RLIMIT_CPU, cfg.Limits.CPUSeconds}} {
		if err := lowerLimit(l.res, l.v); err != nil {
			return fail("setting resource limits", err)
		}
	}
	pid, err := startShim(cfg)
	if err != nil {
		return fail(OpStartCommand, err)
	}
	// Not dumpable from here on (it had to be to start the shim from
	// /proc/self/exe): no ptrace, no /proc/1/mem, whatever the command's
	// user. The shim has not run the command's first instruction yet.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		killAll(nil, false)
		return fail("making the sandbox helper non-dumpable", err)
	}
	send(helperStatus{Pid: pid})

	// The reaper: every process below the helper ends up as its child
	// (subreaper), so wait4(-1) sees them all; ECHILD means none is left.
	exited := make(chan syscall.WaitStatus, 1)
	allGone := make(chan struct{})
	go func() {
		for {
			var ws syscall.WaitStatus
			p, err := syscall.Wait4(-1, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				close(allGone)
				return
			}
			if p == pid {
				exited <- ws
			}
		}
	}()

	var ws syscall.WaitStatus
	var escalate <-chan time.Time
	running := true
	for running {
		select {
		case ws = <-exited:
			running = false
		case s := <-sigs:
			if s == syscall.SIGUSR1 {
				killAll(allGone, false)
				continue
			}
			// Forward to the command's group; kill everything ourselves
			// if it is still there after the grace (attunectl may be gone).
			_ = syscall.Kill(-pid, syscall.SIGTERM)
			if escalate == nil {
				escalate = time.After(time.Duration(max(cfg.GraceMS, 0)) * time.Millisecond)
			}
		case <-escalate:
			killAll(allGone, false)
		}
	}
	// The command is gone: nothing it started may outlive it.
	killAll(allGone, true)
	st := helperStatus{Done: true}
	switch {
	case ws.Exited():
		st.Exited, st.Code = true, ws.ExitStatus()
	case ws.Signaled():
		st.Signal = int(ws.Signal())
	}
	send(st)
	return 0
}

// startShim starts the command through the exec shim, as cfg.Cred when
// set, and returns its pid once the command runs (the shim's exec
// succeeded), or why it did not start.
func startShim(cfg helperConfig) (int, error) {
	// In cgroups of its own, the box's pids controller bounds its
	// processes; a per-user count would let one sensor starve the others
	// of the same user.
	nproc := cfg.Limits.Processes
	if len(cfg.Cgroups) > 0 {
		nproc = 0
	}
	arg, err := json.Marshal(execConfig{Path: cfg.Path, Args: cfg.Args, Processes: nproc})
	if err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	sys := &syscall.SysProcAttr{Setpgid: true}
	if c := cfg.Cred; c != nil {
		sys.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
	}
	proc, err := os.StartProcess("/proc/self/exe", []string{shimArg0, shimMagic, string(arg)}, &os.ProcAttr{
		Dir:   cfg.Dir,
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, w},
		Sys:   sys,
	})
	w.Close()
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(r) // EOF without a word: the exec closed the pipe
	if len(b) > 0 {
		var st helperStatus
		if json.Unmarshal(b, &st) != nil {
			st.StartError = string(b)
		}
		_, _ = proc.Wait()
		if st.Errno != 0 {
			return 0, &os.PathError{Op: "exec", Path: cfg.Path, Err: syscall.Errno(st.Errno)}
		}
		return 0, errors.New(st.StartError)
	}
	return proc.Pid, nil
}

// killAll sends SIGKILL to every descendant of the helper, again and again
// (a process re-parented to the helper after a scan is caught by the next
// one), until wait until the reaper has seen the last of them. With wait
// false it kills one round and returns.
func killAll(allGone <-chan struct{}, wait bool) {
	self := os.Getpid()
	for {
		if self == 1 {
			killBox() // PID 1 of a box: everything else in it
		} else {
			for _, p := range descendants(self) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		if !wait {
			return
		}
		select {
		case <-allGone:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// descendants lists every process below root, from /proc/*/stat.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// parentOf reads the ppid from /proc/<pid>/stat ("pid (comm) state ppid …";
// comm may hold spaces and parentheses: parse after the last ')').
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// lowerLimit sets soft and hard limit res to v (0: leave it), never above
// the current hard limit.
func lowerLimit(res int, v uint64) error {
	if v == 0 {
		return nil
	}
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(res, &cur); err != nil {
		return err
	}
	v = min(v, cur.Max)
	if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
		return fmt.Errorf("resource %d to %d: %w", res, v, err)
	}
	return nil
}
