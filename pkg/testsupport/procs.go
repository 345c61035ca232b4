package testsupport

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var markSeq atomic.Int64

// UniqueMark is a number no other process's command line holds: a test
// starts `sleep MARK` (a valid duration) inside a sandbox, whose process
// ids mean nothing outside its PID namespace, and finds those processes
// on the host with ProcessesWith.
func UniqueMark() string {
	return fmt.Sprintf("%d.%d%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%1000000, markSeq.Add(1))
}

// ProcessesWith lists the live processes of the host whose command line
// holds mark, except the sandbox helpers (whose configuration names the
// command they start).
func ProcessesWith(mark string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && strings.HasPrefix(args[0], "attunectl-sandbox") {
			continue
		}
		if strings.Contains(string(b), mark) && Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// WaitGone waits up to d for every process holding mark to end, and
// returns those still there.
func WaitGone(mark string, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		left := ProcessesWith(mark)
		if len(left) == 0 || time.Now().After(deadline) {
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Alive reports whether pid is a process that is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}
