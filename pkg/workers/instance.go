package workers

import (
	"crypto/rand"
	"os"
	"time"

	"github.com/attune-automation/attunectl/pkg/proc"
)

// Instance identifies one process of a sensor worker. It is stored in the
// row's meta; every write after Register is conditional on meta.instance_id,
// so that a process never heartbeats or deregisters a row that another
// process has taken over.
type Instance struct {
	ID        string    `json:"instance_id"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	// Hostname is the machine's own name (os.Hostname), which may differ
	// from the host the worker advertises.
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	// Identity says which process PID is, in terms that a container with
	// the same hostname, or a pid reused after a restart, cannot fake (boot
	// id, PID namespace, start time): Register trusts "that pid no longer
	// runs" only when the holder's identity proves that the pid is of this
	// machine's boot and of this PID namespace. Stored flat in meta.
	proc.Identity
}

// NewInstance describes this process with a fresh random instance id.
func NewInstance(version string) Instance {
	h, _ := os.Hostname()
	return Instance{
		ID:        rand.Text(),
		PID:       os.Getpid(),
		StartedAt: time.Now().UTC().Truncate(time.Millisecond),
		Hostname:  h,
		Version:   version,
		Identity:  proc.Self(),
	}
}

// holderIsDeadLocalProcess reports whether the holder's process certainly
// ended: its row's identity proves that its pid is of this boot and of this
// PID namespace, the pid is not ours, and no process with that pid and start
// time runs (proc.Ended). Its hostname must be ours too, but that alone
// proves nothing: containers of two machines, or two containers of one, may
// share one hostname and one pid (each is PID 1 of its own namespace). A
// holder written by an older attunectl, without an identity, is never taken
// this way; it is taken once it is stale.
func (r *Registration) holderIsDeadLocalProcess(h holder) bool {
	if h.InstanceID == "" || h.PID <= 0 || h.PID == r.inst.PID || h.Hostname == "" || h.Hostname != r.inst.Hostname {
		return false
	}
	return proc.Ended(h.PID, h.identity)
}
