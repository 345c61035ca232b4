package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
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
const (
	helperArg0  = "attunectl-sandbox"
	helperMagic = "--attunectl-sandbox-v1"
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
	// Inherited by the command: applied before it exists. syscall.Setrlimit
	// (not prlimit) so that Go does not restore its startup RLIMIT_NOFILE
	// in the child.
	for _, l := range []struct {
		res int
		v   uint64
	}{{syscall.RLIMIT_NOFILE, cfg.Limits.OpenFiles}, {unix.RLIMIT_DATA, cfg.Limits.MemoryBytes}, {syscall.RLIMIT_CPU, cfg.Limits.CPUSeconds}} {
		if err := lowerLimit(l.res, l.v); err != nil {
			return fail("setting resource limits", err)
		}
	}
	proc, err := os.StartProcess(cfg.Path, cfg.Args, &os.ProcAttr{
		Dir:   cfg.Dir,
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return fail(OpStartCommand, err)
	}
	pid := proc.Pid
	if cfg.Limits.Processes > 0 {
		lim := unix.Rlimit{Cur: cfg.Limits.Processes, Max: cfg.Limits.Processes}
		var old unix.Rlimit
		if unix.Prlimit(pid, unix.RLIMIT_NPROC, nil, &old) == nil && old.Max < lim.Max {
			lim = unix.Rlimit{Cur: min(lim.Cur, old.Max), Max: old.Max}
		}
		if err := unix.Prlimit(pid, unix.RLIMIT_NPROC, &lim, nil); err != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_, _ = proc.Wait()
			return fail("limiting processes", err)
		}
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

// killAll sends SIGKILL to every descendant of the helper, again and again
// (a process re-parented to the helper after a scan is caught by the next
// one), until wait until the reaper has seen the last of them. With wait
// false it kills one round and returns.
func killAll(allGone <-chan struct{}, wait bool) {
	self := os.Getpid()
	for {
		for _, p := range descendants(self) {
			_ = syscall.Kill(p, syscall.SIGKILL)
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
