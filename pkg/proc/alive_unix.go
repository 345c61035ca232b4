//go:build unix

package proc

import (
	"errors"
	"syscall"
)

// Alive reports whether pid names a process that still runs: it exists
// (kill(pid, 0) succeeds, or fails only for lack of permission) and is not a
// zombie (exited, waiting for its parent to reap it). A pid of 0 or less is
// never alive.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !isZombie(pid)
}
