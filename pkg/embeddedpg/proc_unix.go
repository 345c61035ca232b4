//go:build unix

package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/attune-automation/attunectl/pkg/proc"
)

const (
	sigFast      = syscall.SIGINT  // fast shutdown: roll back sessions, checkpoint, exit
	sigImmediate = syscall.SIGQUIT // immediate shutdown: exit now, recover at next start
	sigKill      = syscall.SIGKILL
)

// lockFile takes an exclusive flock on path, waiting until ctx is done. flock
// locks belong to the open file, so two goroutines of one process exclude
// each other as two processes do. The lock goes away with the process.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file %s: %w (check that its directory exists and is writable)", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s held by another attunectl: %w (another process is starting or stopping this server; try again)", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// signalProcess sends sig to pid.
func signalProcess(pid int, sig syscall.Signal) error {
	err := syscall.Kill(pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// processAlive is proc.Alive, the one liveness check of attunectl.
func processAlive(pid int) bool { return proc.Alive(pid) }

// procAttr switches user when root and, for a foreground child, puts it in
// its own process group and has the kernel signal it when we die.
func procAttr(r runAs, foreground bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if r.switchUser {
		attr.Credential = &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.gid), Groups: r.groups}
	}
	if foreground {
		attr.Setpgid = true
		setDeathSignal(attr, sigImmediate)
	}
	return attr
}

func fileOwner(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// DataDirOwner is the uid that owns the data directory dir — the user the
// embedded server runs as — when dir exists.
func DataDirOwner(dir string) (uint32, bool) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}
