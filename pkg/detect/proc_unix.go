//go:build unix

package detect

import (
	"os"
	"syscall"
)

// groupAttr starts a verification command as the leader of its own process
// group, so that a timeout can kill it together with everything it started.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killProcessGroup kills the group p leads with SIGKILL.
func killProcessGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
