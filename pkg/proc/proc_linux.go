package proc

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// stat returns the fields of /proc/<pid>/stat after the command name
// (which may hold spaces and parentheses): fields[0] is the state (field 3
// of proc(5)), fields[19] the start time (field 22).
func stat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// isZombie reads the state of pid: an exited process whose parent has not
// reaped it yet still answers kill(pid, 0).
func isZombie(pid int) bool {
	f := stat(pid)
	return len(f) > 0 && f[0] == "Z"
}

// startTime is when pid started, in clock ticks since boot; 0 when unknown.
func startTime(pid int) uint64 {
	f := stat(pid)
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pidNamespace is the link /proc/self/ns/pid, "pid:[4026531836]": its inode
// names the PID namespace.
func pidNamespace() string {
	s, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return s
}
