package embeddedpg

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// setDeathSignal has the kernel send sig to the child when the thread that
// started it exits. Go keeps its threads for the life of the process (none of
// this package's goroutines lock a thread), so in practice: when we die.
func setDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) {
	attr.Pdeathsig = sig
}

// isZombie reads the state field of /proc/<pid>/stat: an exited process
// whose parent has not reaped it yet still answers kill(pid, 0).
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z'
}

// processName is the command name of pid ("postgres"), or "" when unknown.
func processName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}
