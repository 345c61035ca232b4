package workers

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors a Registration returns, matched with errors.Is. Each is carried by
// a typed error (*NameInUseError, *TakenOverError) or wrapped with the
// worker's name, so the text says what to do.
var (
	// ErrNameInUse: Register found the name held by a live worker of another
	// instance, or by a worker of another role.
	ErrNameInUse = errors.New("worker name in use")
	// ErrTakenOver: the row now belongs to another instance (it registered
	// with --replace, or re-registered the name after a prune). This
	// instance must stop.
	ErrTakenOver = errors.New("worker row taken over by another instance")
	// ErrRowGone: the row was deleted (pruned). Register again.
	ErrRowGone = errors.New("worker row no longer exists")
	// ErrNotRegistered: the Registration has not registered yet.
	ErrNotRegistered = errors.New("sensor worker is not registered")
)

// NameInUseError says who holds a worker name that Register may not take.
type NameInUseError struct {
	Name       string
	WorkerID   int64
	Role       string // the holder's worker_role
	Host       string // the holder's host column
	Hostname   string // meta.hostname: the machine the holder runs on
	PID        int    // meta.pid
	InstanceID string // meta.instance_id
	Status     string
	// LastHeartbeat is nil when the holder never heartbeat.
	LastHeartbeat *time.Time
	// Silence is the time since LastHeartbeat by the database clock.
	Silence time.Duration
	// Grace is how long the holder may be silent before it is stale.
	Grace time.Duration
}

func (e *NameInUseError) Error() string {
	where := e.Host
	if where == "" {
		where = e.Hostname
	}
	if where == "" {
		where = "an unknown host"
	} else {
		where = "host " + where
	}
	if e.Role != RoleSensor {
		article := "a"
		if strings.HasPrefix(e.Role, "a") {
			article = "an"
		}
		return fmt.Sprintf("registering sensor worker %q: the name belongs to %s %s worker (id %d) on %s, and a sensor never takes over another role's row, not even with --replace: choose another name with --name or sensor.worker_name",
			e.Name, article, e.Role, e.WorkerID, where)
	}
	proc := ""
	if e.PID > 0 {
		proc = fmt.Sprintf(" (pid %d)", e.PID)
	}
	wait := e.Grace - e.Silence
	if wait < time.Second {
		wait = time.Second
	}
	return fmt.Sprintf("registering sensor worker %q: the name is held by a live sensor worker on %s%s, last heartbeat %s ago: stop that worker, pass --replace to take the name over, wait %s until it is stale (no heartbeat for %s), or choose another --name",
		e.Name, where, proc, roundDuration(e.Silence), roundDuration(wait), roundDuration(e.Grace))
}

// Is matches ErrNameInUse.
func (e *NameInUseError) Is(target error) bool { return target == ErrNameInUse }

// TakenOverError says that another instance now holds this worker's row.
type TakenOverError struct {
	Name       string
	WorkerID   int64
	Host       string
	Hostname   string
	PID        int
	InstanceID string
}

func (e *TakenOverError) Error() string {
	by := e.Hostname
	if by == "" {
		by = e.Host
	}
	if by == "" {
		by = "an unknown host"
	}
	proc := ""
	if e.PID > 0 {
		proc = fmt.Sprintf(", pid %d", e.PID)
	}
	return fmt.Sprintf("sensor worker %q (id %d) was taken over by another instance (on %s%s, instance %s), probably started with --replace: this instance stops; if both should run, give each its own --name",
		e.Name, e.WorkerID, by, proc, e.InstanceID)
}

// Is matches ErrTakenOver.
func (e *TakenOverError) Is(target error) bool { return target == ErrTakenOver }

// roundDuration shortens a duration for messages: 12s, 1m30s, 250ms.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
