//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Without Linux's subreaper, prctl and prlimit, commands run directly, in
// their own process group on Unix; limits are not applied and the user
// cannot be switched (New refuses).
const canSwitchUser = false

// Start starts spec directly (no helper).
func (s *Sandbox) Start(ctx context.Context, spec Spec) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	cmd := &exec.Cmd{Path: spec.Path, Args: spec.Args, Env: spec.Env, Dir: dir,
		Stdin: spec.Stdin, Stdout: spec.Stdout, Stderr: spec.Stderr, SysProcAttr: groupAttr()}
	if err := cmd.Start(); err != nil {
		return nil, newStartError(OpStartCommand, err)
	}
	p := &Process{cmd: cmd, pid: cmd.Process.Pid, user: s.user, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		killGroup(cmd.Process) // what stayed in its group does not outlive it
		st := cmd.ProcessState
		if st.Exited() {
			p.state = State{Exited: true, ExitCode: st.ExitCode()}
		} else if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.state = State{Signal: int(ws.Signal())}
		} else {
			p.state = State{Signal: 9}
		}
		close(p.done)
	}()
	return p, nil
}

// Process is a command started by Start.
type Process struct {
	cmd   *exec.Cmd
	pid   int
	user  User
	done  chan struct{}
	state State
	mu    sync.Mutex
}

// Pid is the command's process id.
func (p *Process) Pid() int { return p.pid }

// User is whom the command runs as.
func (p *Process) User() User { return p.user }

// Done is closed when the command has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits until the command has ended.
func (p *Process) Wait() State {
	<-p.done
	return p.state
}

// Terminate asks the command to stop.
func (p *Process) Terminate() {
	select {
	case <-p.done:
	default:
		terminate(p.cmd.Process)
	}
}

// Kill ends the command (and its process group on Unix) now.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		killGroup(p.cmd.Process)
	}
}

// Stop is Terminate, then Kill after grace.
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

// dynamicUser is not used where the user cannot be switched.
func dynamicUser() (User, error) {
	return User{}, errors.New("running commands as another user is supported on Linux only")
}

// probeIsolation: only Linux has the namespaces and cgroups of a box.
func probeIsolation(bool) Isolation {
	return Isolation{Off: []string{"box and cgroups: Linux only; commands run directly, in their own process group"}}
}
