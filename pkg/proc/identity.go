package proc

import (
	"os"
	"sync"
)

// Identity says which process a pid named when it was recorded, in terms
// that a container with the same hostname, or a pid reused after a restart,
// cannot fake: the kernel's boot id (one per boot of the machine, shared by
// every container on it), the inode of the PID namespace the pid belongs to
// (one per container), and the process's start time in clock ticks since
// boot. Zero fields are unknown (outside Linux, or /proc is not mounted).
type Identity struct {
	BootID       string `json:"boot_id,omitempty"`
	PIDNamespace string `json:"pid_namespace,omitempty"`
	StartTime    uint64 `json:"process_start,omitempty"`
}

// Known reports whether the identity says enough to compare pids: the boot
// and the PID namespace.
func (id Identity) Known() bool { return id.BootID != "" && id.PIDNamespace != "" }

// SameNamespace reports whether a pid recorded with id means the same
// process table as this process's pids: same boot, same PID namespace.
func (id Identity) SameNamespace() bool {
	me := self()
	return id.Known() && me.Known() && id.BootID == me.BootID && id.PIDNamespace == me.PIDNamespace
}

// Self is the identity of this process (read once: it does not change).
func Self() Identity { return self() }

var self = sync.OnceValue(func() Identity {
	return Identity{BootID: bootID(), PIDNamespace: pidNamespace(), StartTime: startTime(os.Getpid())}
})

// Of is the identity of pid, a process of this PID namespace; fields it
// cannot read are left zero. attunectl reads its own identity (Self); the
// tests of pkg/workers use Of for another live process.
func Of(pid int) Identity {
	id := self()
	id.StartTime = startTime(pid)
	return id
}

// Ended reports whether the process that was pid, recorded with id, has
// certainly ended. It says so only when the answer is certain: the record
// comes from this boot and this PID namespace, the pid is not this
// process's own, and either no process runs under that pid any more or the
// one that does started at another time (the pid was reused). In every
// other case (another machine or container, an identity that is not known,
// a start time that cannot be read) it says false: a wrong "ended" would
// take a live worker's name, a wrong "not ended" only waits for the row to
// go stale.
func Ended(pid int, id Identity) bool {
	if pid <= 0 || pid == os.Getpid() || !id.SameNamespace() {
		return false
	}
	if !Alive(pid) {
		return true
	}
	now := startTime(pid)
	return id.StartTime != 0 && now != 0 && now != id.StartTime
}
