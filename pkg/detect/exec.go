package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/attune-automation/attunectl/pkg/sandbox"
)

// defaultPATH is used when the environment has no PATH at all.
const defaultPATH = sandbox.DefaultPATH

// execOutcome is what running one argv produced; it is shared by every
// command with the same argv in one Verify call.
type execOutcome struct {
	path      string
	ran       bool
	exitCode  int
	stdout    []byte
	stderr    []byte
	truncated bool
	started   time.Time
	duration  time.Duration
	reason    string // set when the command could not run or did not finish
	// transient: the command could not run or finish for a local,
	// passing reason (EMFILE, ENOMEM, EAGAIN, the detection deadline): its
	// failure says nothing about the runtime.
	transient bool
	notRun    bool
}

// scrubEnv is the sandbox's scrubbed environment (sandbox.ScrubEnv).
func scrubEnv(environ, passthrough []string) []string { return sandbox.ScrubEnv(environ, passthrough) }

var errNotFound = sandbox.ErrNotFound

// lookPathIn is sandbox.LookPath: absolute PATH entries only.
func lookPathIn(pathEnv, name string) (string, error) { return sandbox.LookPath(pathEnv, name) }

// checkExecutable explains why an absolute path cannot be run ("" if it can).
func checkExecutable(path string) string {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not found"
	case err != nil:
		return fmt.Sprintf("cannot stat: %v", err)
	case fi.IsDir():
		return "is a directory"
	case fi.Mode().Perm()&0o111 == 0:
		return "not executable"
	}
	return ""
}

// runProcess runs path as argv [argv0, args...] in the sandbox, with the
// scrubbed env, "/" as working directory and stdin from /dev/null. The
// sandbox kills the command and everything it started when the timeout
// fires or ctx ends, and when the command exits (a setsid daemon
// included); stdout and stderr are each read through a maxOutput cap.
func runProcess(ctx context.Context, sb *sandbox.Sandbox, path, argv0 string, args, env []string, timeout time.Duration, maxOutput int) execOutcome {
	out := execOutcome{path: path, exitCode: -1}
	if err := ctx.Err(); err != nil {
		out.reason, out.transient, out.notRun = stopReason(ctx, "not run")
		return out
	}
	o := sb.Run(ctx, sandbox.Spec{Path: path, Args: append([]string{argv0}, args...), Env: env, Dir: "/"},
		sandbox.RunOptions{Timeout: timeout, MaxOutput: maxOutput})
	out.duration, out.started = o.Duration, o.Started
	if o.StartErr != nil {
		out.reason = startReason(o.StartErr, sb.User())
		out.transient = o.StartErr.Transient
		return out
	}
	if o.Started.IsZero() {
		// ctx (the deadline, or a shutdown) ended while it was starting.
		out.reason, out.transient, out.notRun = stopReason(ctx, "not run")
		return out
	}
	out.ran = true
	out.stdout, out.stderr, out.truncated = o.Stdout, o.Stderr, o.Truncated
	switch {
	case o.TimedOut:
		out.reason = fmt.Sprintf("timed out after %s", timeout)
	case o.Canceled:
		out.reason, out.transient, _ = stopReason(ctx, "stopped")
	case o.State.Problem != "":
		out.reason = o.State.Problem
	case o.State.Exited:
		out.exitCode = o.State.ExitCode
	default:
		out.reason = fmt.Sprintf("killed by signal %v", syscall.Signal(o.State.Signal))
	}
	return out
}

// stopReason words why ctx ended: the detection deadline ("not run:
// detection deadline of 15s reached", transient) or a cancellation.
func stopReason(ctx context.Context, verb string) (reason string, transient, notRun bool) {
	var dl deadlineError
	if errors.As(context.Cause(ctx), &dl) {
		return verb + ": " + dl.Error(), true, verb == "not run"
	}
	return "canceled: " + context.Cause(ctx).Error(), false, verb == "not run"
}

// deadlineError is the cause of the detection context ending at Options.Deadline.
type deadlineError struct{ d time.Duration }

func (e deadlineError) Error() string {
	return fmt.Sprintf("detection deadline of %s reached", e.d)
}

// startReason words a failure to start the process. A transient local
// shortage says so: the runtime may well be there.
func startReason(se *sandbox.StartError, u sandbox.User) string {
	var errno syscall.Errno
	errors.As(se, &errno)
	switch {
	case se.Transient:
		return fmt.Sprintf("could not start (transient, will retry): %s", se.Error())
	case se.Op != sandbox.OpStartCommand:
		// The sandbox, not the command, failed (e.g. its helper).
		return fmt.Sprintf("could not start: %v", se)
	case errors.Is(se, fs.ErrNotExist):
		return "not found"
	case errno == syscall.EACCES:
		return fmt.Sprintf("not executable by %s: permission denied", u.Name)
	case errno == syscall.ENOEXEC:
		return "could not start: exec format error (a script needs a #! line)"
	}
	return fmt.Sprintf("could not start: %v", se)
}
