package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const canSwitchUser = true

var dumpableOnce sync.Once

// makeNonDumpable closes /proc/<attunectl>/environ (and mem, and ptrace) to
// every process without CAP_SYS_PTRACE, children of the same user
// included, and keeps inherited descriptors from any child. It is done
// once, before the first child starts. Where commands run in a box with a
// user namespace (attunectl is an ordinary user), attunectl stays dumpable:
// the kernel lets it write its child's uid map only then, and the box
// already keeps its commands from seeing any process outside it.
func makeNonDumpable(userns bool) {
	dumpableOnce.Do(func() {
		if !userns {
			_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
		}
		closeInheritedOnExec()
	})
}

// closeInheritedOnExec marks every descriptor attunectl inherited from
// whoever started it (3 and up: a shell's `9<secret`, a service manager's
// sockets) close-on-exec, so that none reaches a command it runs. Go opens
// its own descriptors close-on-exec already.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// Start starts spec under the helper and returns once the command runs;
// when it did not start, the error is a *StartError, or ctx's cause when
// ctx ended first. ctx only bounds the start; to end the command use Stop
// or Kill (Run ties them to a context and a timeout).
func (s *Sandbox) Start(ctx context.Context, spec Spec) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	makeNonDumpable(s.box && s.userns)
	cfg := helperConfig{Path: spec.Path, Args: spec.Args, Dir: spec.Dir, Limits: s.limits, GraceMS: DefaultStopGrace.Milliseconds()}
	if cfg.Dir == "" {
		cfg.Dir = "/"
	}
	var arg []byte
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, newStartError("creating a pipe", err)
	}
	env := spec.Env
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	who := s.user
	var releaseUID func()
	if s.box && s.dynamic {
		u, release, err := acquireBoxUser()
		if err != nil {
			statusR.Close()
			statusW.Close()
			return nil, &StartError{Op: "picking a uid for the sandbox", Err: err}
		}
		who, releaseUID = u, release
	}
	switch {
	case s.box:
		boxAttr(attr, s.userns)
		b := &boxConfig{Hide: s.hide, Keep: keepDirs(spec.Path, cfg.Dir, spec.Args), TmpBytes: s.tmpBytes,
			UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
		if s.switchUser {
			// The helper stays root, a user the command is not; it starts
			// the command as the sandbox user.
			cfg.Cred = &credential{UID: who.UID, GID: who.GID, Groups: append([]uint32{}, who.Groups...)}
			b.UID, b.GID = who.UID, who.GID
		}
		cfg.Box = b
		env = withHome(env, BoxHome)
	case s.switchUser:
		env = withHome(env, s.user.Home)
		attr.Credential = &syscall.Credential{Uid: s.user.UID, Gid: s.user.GID, Groups: append([]uint32{}, s.user.Groups...)}
	}
	cg, err := s.newCgroup()
	if err != nil {
		statusR.Close()
		statusW.Close()
		if releaseUID != nil {
			releaseUID()
		}
		return nil, &StartError{Op: "creating the sandbox's cgroup", Err: err}
	}
	// cleanup gives back what the box held once it is gone (or never was).
	cleanup := func() {
		cg.remove()
		if releaseUID != nil {
			releaseUID()
		}
	}
	if cg != nil {
		cfg.Cgroups = cg.dirs
	}
	arg, err = json.Marshal(cfg)
	if err != nil {
		cleanup()
		return nil, &StartError{Op: "encoding the sandbox configuration", Err: err}
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{helperArg0, helperMagic, string(arg)},
		Env:         env,
		Dir:         "/",
		Stdin:       spec.Stdin,
		Stdout:      spec.Stdout,
		Stderr:      spec.Stderr,
		ExtraFiles:  []*os.File{statusW},
		SysProcAttr: attr,
	}
	err = cmd.Start()
	statusW.Close()
	if err != nil {
		statusR.Close()
		cleanup()
		se := newStartError("starting the sandbox helper", err)
		if errors.Is(err, syscall.EACCES) {
			se.Op += fmt.Sprintf(" as %s (attunectl's binary must be executable by that user, e.g. mode 0755)", s.user)
		}
		return nil, se
	}
	p := &Process{cmd: cmd, user: who, done: make(chan struct{}), cleanup: cleanup}
	status := bufio.NewReader(statusR)
	// A start that ctx ends is ended by the helper's kill-all signal, not
	// by killing the helper: a command it has just started must not be
	// orphaned. (Before the helper handles signals, SIGUSR1 ends it, and
	// it has started nothing yet.)
	stopStart := context.AfterFunc(ctx, func() { _ = cmd.Process.Signal(syscall.SIGUSR1) })
	first, ok := readStatus(status)
	stopStart()
	switch {
	case !ok:
		_ = cmd.Wait()
		statusR.Close()
		cleanup()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx) // ended by ctx while starting
		}
		return nil, &StartError{Op: "starting the sandbox helper", Err: fmt.Errorf("it ended before starting the command: %s", cmd.ProcessState)}
	case first.StartError != "":
		_ = cmd.Wait()
		statusR.Close()
		cleanup()
		se := &StartError{Op: first.Op, Err: errors.New(first.StartError), Errno: first.Errno}
		if first.Errno != 0 {
			se.Err = syscall.Errno(first.Errno)
			se.Transient = isTransient(syscall.Errno(first.Errno))
		}
		return nil, se
	}
	p.pid = first.Pid
	if s.box {
		p.pid = hostPid(cmd.Process.Pid, first.Pid)
	}
	go func() {
		last, ok := readStatus(status)
		werr := cmd.Wait()
		statusR.Close()
		switch {
		case ok && last.Done && last.Exited:
			p.state = State{Exited: true, ExitCode: last.Code}
		case ok && last.Done:
			p.state = State{Signal: last.Signal}
		default:
			// The helper itself was killed (OOM killer, kill -9): kill
			// what can still be found, the command's process group.
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			p.state = State{Signal: int(syscall.SIGKILL), Problem: fmt.Sprintf("the sandbox helper ended unexpectedly (%v)", werr)}
		}
		p.cleanup()
		close(p.done)
	}()
	return p, nil
}

// hostPid finds, among the children of the helper (host pid helper), the
// one that is nsPid in the box's PID namespace; helper when none is.
func hostPid(helper, nsPid int) int {
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(helper) + "/task")
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(helper) + "/task/" + t.Name() + "/children")
		for _, c := range strings.Fields(string(b)) {
			st, _ := os.ReadFile("/proc/" + c + "/status")
			for _, line := range strings.Split(string(st), "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" && f[len(f)-1] == strconv.Itoa(nsPid) {
					if pid, err := strconv.Atoi(c); err == nil {
						return pid
					}
				}
			}
		}
	}
	return helper
}

// readStatus reads one JSON line from the helper.
func readStatus(r *bufio.Reader) (helperStatus, bool) {
	line, err := r.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return helperStatus{}, false
	}
	var st helperStatus
	if json.Unmarshal(line, &st) != nil {
		return helperStatus{}, false
	}
	return st, true
}

// withHome replaces HOME in env by home.
func withHome(env []string, home string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+home)
}

// Process is a command started by Start.
type Process struct {
	cleanup func() // gives back the box's cgroups and uid
	cmd     *exec.Cmd
	pid     int
	user    User
	done    chan struct{}
	state   State
	stop    sync.Once
}

// Pid is the command's process id (not the helper's).
func (p *Process) Pid() int { return p.pid }

// User is whom the command runs as.
func (p *Process) User() User { return p.user }

// Done is closed when the command and everything it started are gone.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits until the command and everything it started are gone.
func (p *Process) Wait() State {
	<-p.done
	return p.state
}

// Terminate asks the command to stop: SIGTERM to its process group. If it
// is still there DefaultStopGrace later, the helper kills everything
// itself (so a stop is bounded even when attunectl is gone).
func (p *Process) Terminate() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// Kill ends the command and every process below it with SIGKILL now.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGUSR1)
	}
}

// Stop is Terminate, then Kill after grace; it returns how the command
// ended. This is the supervisor's stop: SIGTERM, then SIGKILL.
func (p *Process) Stop(grace time.Duration) State {
	p.Terminate()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.state
	case <-t.C:
		p.Kill()
	}
	// A helper that does not finish the kill (it cannot be frozen from
	// inside its box, but a host may be overloaded) is killed itself: the
	// kernel then kills everything in its PID namespace.
	t.Reset(killWait)
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
	}
	return p.Wait()
}

// killWait is how long Stop waits for the helper to kill the command
// before it kills the helper.
const killWait = 2 * time.Second

var probes struct {
	sync.Mutex
	done map[bool]Isolation
}

// probeIsolation finds out, once per process, which protections this host
// gives commands: it starts the helper in a box that starts nothing, and
// makes and removes a cgroup (as root).
func probeIsolation(root bool) Isolation {
	probes.Lock()
	defer probes.Unlock()
	if iso, ok := probes.done[root]; ok {
		return iso
	}
	var iso Isolation
	if err := probeBox(!root); err != nil {
		what := "namespaces"
		if !root {
			what = "user namespaces"
		}
		iso.Off = append(iso.Off, fmt.Sprintf("box: this host does not let attunectl create %s (%v): sensors share /tmp, HOME and /proc with each other and can read the worker's files", what, err))
	} else {
		iso.Box, iso.UserNamespace = true, !root
	}
	switch {
	case !root:
		iso.Off = append(iso.Off, "cgroups: attunectl is not root: processes are bounded per user (RLIMIT_NPROC) and memory per process (RLIMIT_DATA), not per sensor")
	default:
		if cg, err := createCgroup(fmt.Sprintf("probe-%d", os.Getpid()), Limits{}); err != nil {
			iso.Off = append(iso.Off, fmt.Sprintf("cgroups: %v (on cgroup v2, delegate a subtree to attunectl, e.g. systemd's Delegate=yes): processes are bounded per user and memory per process, not per sensor", err))
		} else {
			cg.remove()
			iso.Cgroups = true
		}
	}
	if probes.done == nil {
		probes.done = map[bool]Isolation{}
	}
	probes.done[root] = iso
	return iso
}

// probeBox starts the helper in a box with nothing to run.
func probeBox(userns bool) error {
	cfg := helperConfig{Probe: true, Box: &boxConfig{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}}
	arg, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	boxAttr(attr, userns)
	var stderr strings.Builder
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer statusR.Close()
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{helperArg0, helperMagic, string(arg)}, Dir: "/",
		Stderr: &stderr, ExtraFiles: []*os.File{statusW}, SysProcAttr: attr}
	err = cmd.Start()
	statusW.Close()
	if err != nil {
		return err
	}
	st, ok := readStatus(bufio.NewReader(statusR))
	_ = cmd.Wait()
	switch {
	case !ok:
		return fmt.Errorf("the sandbox helper ended: %s", cmd.ProcessState)
	case st.StartError != "":
		return fmt.Errorf("%s: %s", st.Op, st.StartError)
	}
	return nil
}
