package proc

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

func TestAlive(t *testing.T) {
	t.Parallel()
	if !Alive(os.Getpid()) {
		t.Error("Alive(own pid) = false")
	}
	for _, pid := range []int{0, -1} {
		if Alive(pid) {
			t.Errorf("Alive(%d) = true", pid)
		}
	}
	// An exited child that was reaped.
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	if Alive(c.Process.Pid) {
		t.Errorf("Alive(reaped child %d) = true", c.Process.Pid)
	}
}

// An exited child that nobody reaped yet (a zombie) is not alive.
func TestAliveZombie(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Fatalf("zombies are told apart on linux only (this test runs on %s)", runtime.GOOS)
	}
	c := exec.Command("true")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !isZombie(c.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the child did not become a zombie")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if Alive(c.Process.Pid) {
		t.Errorf("Alive(zombie %d) = true", c.Process.Pid)
	}
}

func TestEnded(t *testing.T) {
	t.Parallel()
	self := Self()
	if !self.Known() || self.StartTime == 0 {
		t.Fatalf("Self() = %+v; want boot id, pid namespace and start time", self)
	}
	c := exec.Command("sleep", "30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	live := c.Process.Pid
	liveID := Of(live)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	otherNS := self
	otherNS.PIDNamespace = "pid:[1]"
	otherBoot := self
	otherBoot.BootID = "00000000-0000-0000-0000-000000000000"
	reused := liveID
	reused.StartTime = liveID.StartTime + 1
	unknownStart := liveID
	unknownStart.StartTime = 0
	for _, tc := range []struct {
		name  string
		pid   int
		id    Identity
		ended bool
	}{
		{"own pid", os.Getpid(), Identity{BootID: self.BootID, PIDNamespace: self.PIDNamespace, StartTime: 1}, false},
		{"live process", live, liveID, false},
		{"live process, start time unknown", live, unknownStart, false},
		{"pid reused by another process", live, reused, true},
		{"exited process", dead.Process.Pid, self, true},
		{"exited pid of another pid namespace", dead.Process.Pid, otherNS, false},
		{"exited pid of another boot", dead.Process.Pid, otherBoot, false},
		{"exited pid, identity unknown", dead.Process.Pid, Identity{}, false},
	} {
		if got := Ended(tc.pid, tc.id); got != tc.ended {
			t.Errorf("%s: Ended(%d, %+v) = %v; want %v", tc.name, tc.pid, tc.id, got, tc.ended)
		}
	}
	_ = c.Process.Kill()
	_ = c.Wait()
	if !Ended(live, liveID) {
		t.Error("Ended = false after the process was killed and reaped")
	}
}
