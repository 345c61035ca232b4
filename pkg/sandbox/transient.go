package sandbox

import (
	"errors"
	"strings"
	"syscall"
)

// isTransient reports whether errno is a local shortage rather than a
// property of the command: too many open files (process or system), no
// memory, or fork refused for now (EAGAIN: process limit or memory).
func isTransient(errno syscall.Errno) bool {
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EAGAIN:
		return true
	}
	return false
}

// IsTransient reports whether err is (or wraps) a transient local failure.
func IsTransient(err error) bool {
	var se *StartError
	if errors.As(err, &se) && se.Transient {
		return true
	}
	var errno syscall.Errno
	return errors.As(err, &errno) && isTransient(errno)
}

func newStartError(op string, err error) *StartError {
	se := &StartError{Op: op, Err: err}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		se.Errno = int(errno)
		se.Transient = isTransient(errno)
	}
	return se
}

// transientText reports whether err is transient, also when the errno
// only survives as text (the cgo user lookup formats it with %v).
func transientText(err error) bool {
	if IsTransient(err) {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EAGAIN} {
		if strings.Contains(err.Error(), e.Error()) {
			return true
		}
	}
	return false
}
