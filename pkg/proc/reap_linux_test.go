package proc

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// waitZombie waits until pid is a zombie.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !isZombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not become a zombie", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A zombie that nobody waits for is reaped at the second look; a child
// that os/exec will wait for is never taken from it.
func TestReapOnce(t *testing.T) {
	// Not parallel: reapOnce looks at every child of the test binary.
	waited := exec.Command("true")
	if err := waited.Start(); err != nil {
		t.Fatal(err)
	}
	orphan, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	waitZombie(t, waited.Process.Pid)
	waitZombie(t, orphan)

	if !pidfdTargets()[waited.Process.Pid] {
		t.Fatalf("no pidfd found for the os/exec child %d: the reaper could not tell it apart", waited.Process.Pid)
	}
	seen := reapOnce(map[int]bool{})
	if !seen[orphan] || seen[waited.Process.Pid] {
		t.Fatalf("first look: %v; want the orphan %d only", seen, orphan)
	}
	if !isZombie(orphan) {
		t.Fatal("the orphan was reaped at the first look; want at the second")
	}
	reapOnce(seen)
	if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); err == nil {
		t.Errorf("the orphan %d is still there after the second look", orphan)
	}
	if err := waited.Wait(); err != nil {
		t.Errorf("Wait of the os/exec child after two looks: %v; want nil (not reaped by ReapOrphans)", err)
	}
}
