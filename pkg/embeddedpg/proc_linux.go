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

// processName is the command name of pid ("postgres"), or "" when unknown.
func processName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}
