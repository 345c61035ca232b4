//go:build windows

package detect

import (
	"os"
	"syscall"
)

// groupAttr: Windows has no process groups in the POSIX sense; the command
// runs as a plain child.
func groupAttr() *syscall.SysProcAttr { return nil }

// killProcessGroup kills the command itself; on Windows a descendant it
// started is not reached (sensor workers run on Unix hosts; the Windows
// build serves `runtime verify` and the inspection commands).
func killProcessGroup(p *os.Process) { _ = p.Kill() }
