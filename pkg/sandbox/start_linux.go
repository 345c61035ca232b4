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
// once, before the first child starts.
func makeNonDumpable() {
	dumpableOnce.Do(func() {
		_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
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
	makeNonDumpable()
	cfg := helperConfig{Path: spec.Path, Args: spec.Args, Dir: spec.Dir, Limits: s.limits, GraceMS: DefaultStopGrace.Milliseconds()}
	if cfg.Dir == "" {
		cfg.Dir = "/"
	}
	arg, err := json.Marshal(cfg)
	if err != nil {
		return nil, &StartError{Op: "encoding the sandbox configuration", Err: err}
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, newStartError("creating a pipe", err)
	}
	env := spec.Env
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if s.switchUser {
		env = withHome(env, s.user.Home)
		attr.Credential = &syscall.Credential{Uid: s.user.UID, Gid: s.user.GID, Groups: append([]uint32{}, s.user.Groups...)}
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
		se := newStartError("starting the sandbox helper", err)
		if errors.Is(err, syscall.EACCES) {
			se.Op += fmt.Sprintf(" as %s (attunectl's binary must be executable by that user, e.g. mode 0755)", s.user)
		}
		return nil, se
	}
	p := &Process{cmd: cmd, user: s.user, done: make(chan struct{})}
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
		if ctx.Err() != nil {
			return nil, context.Cause(ctx) // ended by ctx while starting
		}
		return nil, &StartError{Op: "starting the sandbox helper", Err: fmt.Errorf("it ended before starting the command: %s", cmd.ProcessState)}
	case first.StartError != "":
		_ = cmd.Wait()
		statusR.Close()
		se := &StartError{Op: first.Op, Err: errors.New(first.StartError), Errno: first.Errno}
		if first.Errno != 0 {
			se.Err = syscall.Errno(first.Errno)
			se.Transient = isTransient(syscall.Errno(first.Errno))
		}
		return nil, se
	}
	p.pid = first.Pid
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
		close(p.done)
	}()
	return p, nil
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
	cmd   *exec.Cmd
	pid   int
	user  User
	done  chan struct{}
	state State
	stop  sync.Once
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
	case <-t.C:
		p.Kill()
	}
	return p.Wait()
}
