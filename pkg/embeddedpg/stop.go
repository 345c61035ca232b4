package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Stop shuts the server down (fast: sessions are rolled back, a checkpoint
// is written) and waits until it is gone. When ctx ends first, the server is
// shut down immediately and Stop reports the timeout. Stopping a stopped
// server is not an error.
func (s *Server) Stop(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return s.shutdown(ctx, sigFast, true)
}

// Kill shuts the server down immediately, like a crash: the next start
// replays the WAL. For the fault tests of other packages (pkg/dbtest,
// pkg/sensorworker, cmd/attunectl); attunectl never kills its server.
func (s *Server) Kill() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.shutdown(ctx, sigImmediate, true)
}

// Restart stops the server and starts it again on the same data directory,
// port and socket. After Kill, it just starts it. For the fault tests of
// other packages; attunectl's commands stop and start it separately.
func (s *Server) Restart(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.shutdown(ctx, sigFast, true); err != nil {
		return err
	}
	return s.start(ctx)
}

// shutdown signals the postmaster and waits until it is gone. escalate:
// when ctx ends first, shut it down immediately (then SIGKILL).
func (s *Server) shutdown(ctx context.Context, sig syscall.Signal, escalate bool) error {
	s.mu.Lock()
	pid, c := s.pid, s.child
	s.mu.Unlock()
	if pid == 0 {
		return nil
	}
	var err error
	if c != nil {
		err = stopChild(ctx, c, pid, sig)
	} else {
		err = stopPID(ctx, s.opts.DataDir, pid, sig, escalate)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.pid, s.child = 0, nil
	s.mu.Unlock()
	return nil
}

func stopChild(ctx context.Context, c *child, pid int, sig syscall.Signal) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := signalProcess(pid, sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping postgresql (pid %d): %w", pid, err)
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
	}
	_ = signalProcess(pid, sigImmediate)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = signalProcess(pid, sigKill)
		<-c.done
	}
	return fmt.Errorf("stopping postgresql (pid %d): %w; it was then shut down immediately (the next start recovers from the WAL)", pid, ctx.Err())
}

// stopPID stops a server this process did not spawn, after checking that
// postmaster.pid still names it (so a reused pid is never signalled).
func stopPID(ctx context.Context, dataDir string, pid int, sig syscall.Signal, escalate bool) error {
	pf, err := readPidFile(dataDir)
	if err != nil || pf.pid != pid || !processAlive(pid) {
		return nil
	}
	if err := signalProcess(pid, sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("stopping postgresql (pid %d) on %s: %w (run this as the user the server runs as, or as root)", pid, dataDir, err)
		}
		return fmt.Errorf("stopping postgresql (pid %d) on %s: %w", pid, dataDir, err)
	}
	if waitGone(ctx, pid) {
		return nil
	}
	if !escalate {
		return fmt.Errorf("postgresql (pid %d) on %s did not stop in time: %w (it may still be writing a checkpoint: wait and check again, or stop it at once with kill -QUIT %d)",
			pid, dataDir, ctx.Err(), pid)
	}
	_ = signalProcess(pid, sigImmediate)
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !waitGone(wctx, pid) {
		_ = signalProcess(pid, sigKill)
		kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer kcancel()
		waitGone(kctx, pid)
	}
	return fmt.Errorf("stopping postgresql (pid %d): %w; it was then shut down immediately (the next start recovers from the WAL)", pid, ctx.Err())
}

// waitGone polls until pid no longer runs; false when ctx ends first.
func waitGone(ctx context.Context, pid int) bool {
	for processAlive(pid) {
		select {
		case <-ctx.Done():
			return !processAlive(pid)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}
