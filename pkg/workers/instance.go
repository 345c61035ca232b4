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
	}
}

// holderIsDeadLocalProcess reports whether the holder ran on this machine
// and its process is gone (or its pid is now ours: a container restarted
// with the same hostname and pid).
func (r *Registration) holderIsDeadLocalProcess(h holder) bool {
	if h.InstanceID == "" || h.Hostname == "" || h.Hostname != r.inst.Hostname || h.PID <= 0 {
		return false
	}
	if h.PID == r.inst.PID {
		return true
	}
	return !proc.Alive(h.PID)
}
