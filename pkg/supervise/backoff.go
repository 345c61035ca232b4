package supervise

import (
	"fmt"
	"time"
)

// Policy is how a crashing sensor is restarted: the delay doubles from
// Initial up to Max after each consecutive failure, a run that stayed up
// for ResetAfter clears the failure count, and QuarantineAfter consecutive
// failures stop the sensor until an operator enables it again.
type Policy struct {
	Initial         time.Duration
	Max             time.Duration
	ResetAfter      time.Duration
	QuarantineAfter int
}

// DefaultPolicy is the documented default: 1 s doubling to 5 min, reset
// after 10 minutes healthy, quarantine after 5 consecutive failures.
var DefaultPolicy = Policy{Initial: time.Second, Max: 5 * time.Minute, ResetAfter: 10 * time.Minute, QuarantineAfter: 5}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy
	if p.Initial > 0 {
		d.Initial = p.Initial
	}
	if p.Max > 0 {
		d.Max = p.Max
	}
	if p.ResetAfter > 0 {
		d.ResetAfter = p.ResetAfter
	}
	if p.QuarantineAfter > 0 {
		d.QuarantineAfter = p.QuarantineAfter
	}
	return d
}

// State is a workload's restart record. It lives on the workload, not on
// the worker, so a crash-looping sensor does not reset its backoff by
// moving to another worker.
type State struct {
	// Restarts counts every start after the first, for display.
	Restarts int `json:"restarts"`
	// ConsecutiveFailures counts exits since the last healthy run.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// NextStartAt is when the next start may happen (zero: at once).
	NextStartAt time.Time `json:"next_start_at,omitzero"`
	// Quarantined is set when the sensor kept failing; Reason says why.
	Quarantined bool   `json:"quarantined"`
	Reason      string `json:"reason,omitempty"`
	// LastExit describes the last exit ("exit status 1", "signal: killed").
	LastExit string `json:"last_exit,omitempty"`
	// StderrTail is the end of the last run's standard error.
	StderrTail string `json:"stderr_tail,omitempty"`
}

// Delay is the wait before the start that follows the given number of
// consecutive failures.
func (p Policy) Delay(failures int) time.Duration {
	p = p.withDefaults()
	if failures <= 0 {
		return 0
	}
	d := p.Initial
	for i := 1; i < failures; i++ {
		d *= 2
		if d >= p.Max {
			return p.Max
		}
	}
	return min(d, p.Max)
}

// AfterExit is the state after a run that lasted ranFor ended with exit
// (a description such as "exit status 1") at now. A run that stayed up for
// ResetAfter counts as healthy: the failure count starts again at one.
func (p Policy) AfterExit(st State, ranFor time.Duration, exit, stderrTail string, now time.Time) State {
	p = p.withDefaults()
	if ranFor >= p.ResetAfter {
		st.ConsecutiveFailures = 0
	}
	st.ConsecutiveFailures++
	st.LastExit, st.StderrTail = exit, stderrTail
	if st.ConsecutiveFailures >= p.QuarantineAfter {
		st.Quarantined = true
		st.NextStartAt = time.Time{}
		st.Reason = fmt.Sprintf("quarantined after %d consecutive failures, last: %s (run `attunectl sensor enable REF` to retry)", st.ConsecutiveFailures, exit)
		return st
	}
	st.NextStartAt = now.Add(p.Delay(st.ConsecutiveFailures))
	st.Reason = fmt.Sprintf("%s; restarting in %s (failure %d of %d before quarantine)", exit, p.Delay(st.ConsecutiveFailures), st.ConsecutiveFailures, p.QuarantineAfter)
	return st
}
