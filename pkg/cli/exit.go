package cli

import (
	"errors"
	"fmt"
)

// Exit statuses, documented in the README.
const (
	ExitOK        = 0 // success
	ExitError     = 1 // the command failed (database unreachable, …)
	ExitUsage     = 2 // bad input: unknown flag, invalid value, invalid manifest; nothing was changed
	ExitCondition = 3 // the condition asked about holds: a runtime is unavailable, stale workers exist (--exit-code)
	ExitInterrupt = 130
)

// exitError carries an exit status with an error. A nil err means the
// command already said what it had to (e.g. a table of unavailable runtimes)
// and only the status remains.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is bad input: exit status 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// usageError marks err as bad input.
func usageError(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: ExitUsage, err: err}
}

// conditionError reports the documented condition (exit 3); msg may be nil
// when the output already says everything.
func conditionError(err error) error {
	return &exitError{code: ExitCondition, err: err}
}

// ExitCode maps an error to the process exit status.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return ExitError
}

// silent reports whether err carries nothing to print.
func silent(err error) bool {
	var e *exitError
	return errors.As(err, &e) && e.err == nil
}
