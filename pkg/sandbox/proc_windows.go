//go:build windows

package sandbox

import (
	"os"
	"syscall"
)

// Windows has no process groups in the POSIX sense: the command runs as a
// plain child and only it is killed (sensor workers run on Unix hosts; the
// Windows build serves `runtime verify` and the inspection commands).
func groupAttr() *syscall.SysProcAttr { return nil }

func killGroup(p *os.Process) { _ = p.Kill() }

func terminate(p *os.Process) { _ = p.Kill() }
