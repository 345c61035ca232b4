package proc

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ReapOrphans reaps this process's children that exited and that nobody
// waits for, until ctx ends. It is for PID 1 of a container: the kernel
// makes every orphaned process a child of PID 1, and one that exits stays
// a zombie (holding its pid) until PID 1 reaps it.
//
// It leaves alone the children this process waits for itself (os/exec
// holds a pidfd for each until Wait returns): a zombie is reaped only when
// no pidfd of this process refers to it and it was already a zombie at the
// previous look, a second or a SIGCHLD earlier. Reaping a child os/exec
// waits for would make that Wait fail.
func ReapOrphans(ctx context.Context) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	seen := map[int]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-tick.C:
		}
		seen = reapOnce(seen)
	}
}

// reapOnce reaps the zombie children in seen that are still zombies and
// not waited for, and returns the zombies to reap at the next look.
func reapOnce(seen map[int]bool) map[int]bool {
	zombies := zombieChildren(os.Getpid())
	if len(zombies) == 0 {
		return map[int]bool{}
	}
	waited := pidfdTargets()
	next := map[int]bool{}
	for _, pid := range zombies {
		switch {
		case waited[pid]:
		case seen[pid]:
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		default:
			next[pid] = true
		}
	}
	return next
}

// zombieChildren lists the children of parent in state Z.
func zombieChildren(parent int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := stat(pid)
		if len(f) < 2 || f[0] != "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == parent {
			out = append(out, pid)
		}
	}
	return out
}

// pidfdTargets are the pids this process holds a pidfd for.
func pidfdTargets() map[int]bool {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	out := map[int]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || !strings.Contains(link, "pidfd") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok {
				if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					out[pid] = true
				}
			}
		}
	}
	return out
}
