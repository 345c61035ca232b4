package detect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// defaultPATH is used when the environment has no PATH at all.
const defaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// drainGrace bounds how long output is still read after the command's
// process group is gone: a descendant that left the group (setsid) and
// kept the pipe open must not hold detection.
const drainGrace = 500 * time.Millisecond

// execOutcome is what running one argv produced; it is shared by every
// command with the same argv in one Verify call.
type execOutcome struct {
	path      string
	ran       bool
	exitCode  int
	stdout    []byte
	stderr    []byte
	truncated bool
	duration  time.Duration
	reason    string // set when the command could not run or did not finish
}

// scrubEnv keeps PATH, HOME, LANG, LC_*, TZ, TMPDIR and the passthrough
// names; everything else (ATTUNE__*, PG*, DATABASE_URL, tokens) is dropped.
// A missing PATH is replaced with a standard one.
func scrubEnv(environ, passthrough []string) []string {
	keep := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "TZ": true, "TMPDIR": true}
	for _, p := range passthrough {
		if p = strings.TrimSpace(p); p != "" {
			keep[p] = true
		}
	}
	var out []string
	hasPath := false
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		if keep[name] || strings.HasPrefix(name, "LC_") {
			out = append(out, kv)
			hasPath = hasPath || name == "PATH"
		}
	}
	if !hasPath {
		out = append(out, "PATH="+defaultPATH)
	}
	return out
}

var errNotFound = errors.New("not found on PATH")

// lookPathIn searches the absolute directories of pathEnv for an executable
// regular file called name. Empty and relative entries (".", "bin") are
// skipped: they would make the result depend on the working directory.
func lookPathIn(pathEnv, name string) (string, error) {
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errNotFound
}

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

// capBuffer keeps the first max bytes written and counts the rest.
type capBuffer struct {
	buf       []byte
	max       int
	truncated bool
}

// drain reads r to EOF (or until its read deadline), keeping at most max
// bytes: the reading never stops early, so a chatty command is never
// blocked on a full pipe, and memory stays bounded.
func (c *capBuffer) drain(r io.Reader) {
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			room := c.max - len(c.buf)
			if room > 0 {
				c.buf = append(c.buf, chunk[:min(n, room)]...)
			}
			if n > room {
				c.truncated = true
			}
		}
		if err != nil {
			return
		}
	}
}

// runProcess starts path as argv [argv0, args...] in its own process group,
// with the scrubbed env, "/" as working directory and stdin from /dev/null.
// When the timeout fires or ctx ends, the whole group is killed with
// SIGKILL; when the leader exits, whatever is left of its group is killed
// too, so no descendant that stayed in the group outlives the check.
//
// The pipes are our own (*os.File given to exec), read by our goroutines
// through a cap. This does what exec.Cmd.WaitDelay does, with control over
// the order: Wait returns as soon as the leader exits, the group is killed,
// and the readers get a short grace (drainGrace) before their read deadline
// ends them — a descendant that left the group and kept the pipe open
// cannot hang detection.
func runProcess(ctx context.Context, path, argv0 string, args, env []string, timeout time.Duration, maxOutput int) execOutcome {
	out := execOutcome{path: path, exitCode: -1}
	if err := ctx.Err(); err != nil {
		out.reason = "canceled: " + err.Error()
		return out
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		out.reason = fmt.Sprintf("could not start: creating a pipe: %v", err)
		return out
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		out.reason = fmt.Sprintf("could not start: creating a pipe: %v", err)
		return out
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{argv0}, args...),
		Env:         env,
		Dir:         "/",
		Stdout:      outW, // *os.File: the child writes the pipe directly, no copying goroutine inside exec
		Stderr:      errW,
		SysProcAttr: groupAttr(),
	}
	start := time.Now()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		out.duration = time.Since(start)
		out.reason = startReason(err)
		return out
	}
	out.ran = true
	killGroup := func() { killProcessGroup(cmd.Process) }

	stdout := &capBuffer{max: maxOutput}
	stderr := &capBuffer{max: maxOutput}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); stdout.drain(outR) }()
	go func() { defer readers.Done(); stderr.drain(errR) }()

	var timedOut, canceled atomic.Bool
	timer := time.AfterFunc(timeout, func() { timedOut.Store(true); killGroup() })
	stopCtx := context.AfterFunc(ctx, func() { canceled.Store(true); killGroup() })
	waitErr := cmd.Wait()
	timer.Stop()
	stopCtx()
	// The leader is gone; members of its group (a backgrounded grandchild)
	// are killed now. Linux does not reuse a pid as a process group id while
	// the group has members, so this cannot hit an unrelated process.
	killGroup()
	deadline := time.Now().Add(drainGrace)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	readers.Wait()
	outR.Close()
	errR.Close()
	out.duration = time.Since(start)
	out.stdout, out.stderr = stdout.buf, stderr.buf
	out.truncated = stdout.truncated || stderr.truncated

	st := cmd.ProcessState
	switch {
	case timedOut.Load():
		out.reason = fmt.Sprintf("timed out after %s", timeout)
	case canceled.Load():
		out.reason = "canceled: " + context.Cause(ctx).Error()
	case st == nil:
		out.reason = fmt.Sprintf("waiting for the command: %v", waitErr)
	case st.Exited():
		out.exitCode = st.ExitCode()
	default:
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.reason = fmt.Sprintf("killed by signal %v", ws.Signal())
		} else {
			out.reason = fmt.Sprintf("ended abnormally: %v", st)
		}
	}
	return out
}

// startReason words a failure to start the process.
func startReason(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not found"
	case errors.As(err, &errno) && errno == syscall.EACCES:
		return "not executable: permission denied"
	case errors.As(err, &errno) && errno == syscall.ENOEXEC:
		return "could not start: exec format error (a script needs a #! line)"
	}
	return fmt.Sprintf("could not start: %v", err)
}
