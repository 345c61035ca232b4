package sandbox

import (
	"context"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// drainGrace bounds how long output is still read once the command has
// ended. On Linux the helper has killed every descendant by then, so the
// pipes are closed at once; elsewhere a descendant that left the process
// group may hold them.
const drainGrace = 500 * time.Millisecond

// RunOptions bound one Run.
type RunOptions struct {
	// Timeout ends the command (and everything it started) with SIGKILL.
	Timeout time.Duration
	// MaxOutput is how many bytes of stdout, and separately of stderr, are
	// kept; the rest is read and dropped, so the command never blocks on
	// a full pipe.
	MaxOutput int
}

// Outcome is what Run observed.
type Outcome struct {
	// StartErr is set when the command did not start.
	StartErr *StartError
	// State is how it ended (when it started).
	State State
	// User is whom it ran as.
	User      User
	Stdout    []byte
	Stderr    []byte
	Truncated bool
	// TimedOut: the timeout killed it. Canceled: ctx ended first; Cause
	// is context.Cause(ctx).
	TimedOut bool
	Canceled bool
	Cause    error
	// Started is when the command started (zero when it did not).
	Started  time.Time
	Duration time.Duration
}

// Run starts spec with its stdout and stderr captured through a cap, ends
// it when the timeout fires or ctx ends, and returns once the command and
// everything it started are gone. spec.Stdout and spec.Stderr are ignored.
func (s *Sandbox) Run(ctx context.Context, spec Spec, opts RunOptions) (out Outcome) {
	out.User = s.user
	start := time.Now()
	defer func() { out.Duration = time.Since(start) }()
	outR, outW, err := os.Pipe()
	if err != nil {
		out.StartErr = newStartError("creating a pipe", err)
		return out
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		out.StartErr = newStartError("creating a pipe", err)
		return out
	}
	spec.Stdout, spec.Stderr = outW, errW
	p, err := s.Start(ctx, spec)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		if se, ok := err.(*StartError); ok {
			out.StartErr = se
		} else {
			out.Canceled, out.Cause = true, context.Cause(ctx)
		}
		return out
	}
	out.Started = time.Now()
	out.User = p.User()
	stdout := &capBuffer{max: opts.MaxOutput}
	stderr := &capBuffer{max: opts.MaxOutput}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); stdout.drain(outR) }()
	go func() { defer readers.Done(); stderr.drain(errR) }()

	var timedOut, canceled atomic.Bool
	timer := time.AfterFunc(opts.Timeout, func() { timedOut.Store(true); p.Kill() })
	stopCtx := context.AfterFunc(ctx, func() { canceled.Store(true); p.Kill() })
	out.State = p.Wait()
	timer.Stop()
	stopCtx()
	deadline := time.Now().Add(drainGrace)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	readers.Wait()
	outR.Close()
	errR.Close()
	out.Stdout, out.Stderr = stdout.buf, stderr.buf
	out.Truncated = stdout.truncated || stderr.truncated
	out.TimedOut = timedOut.Load()
	if canceled.Load() && !out.TimedOut {
		out.Canceled, out.Cause = true, context.Cause(ctx)
	}
	return out
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
