// Package ratelog keeps a log line of a hot path (an event write that
// fails for every event while a disk is full, a claim or renewal that fails
// every tick) from flooding the log: the first line of a kind is written,
// then at most one per window, each saying how many like it were left out.
package ratelog

import (
	"sync"
	"time"
)

// Window is how often attunectl's hot paths log a failure of one kind at
// most (each line says how many like it were left out).
const Window = 10 * time.Second

// Limiter decides which lines of each kind (a key: the message and, say,
// the sensor) are written. Safe for concurrent use.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last map[string]*kind
}

type kind struct {
	at         time.Time
	suppressed int
}

// New returns a limiter that writes one line of a kind per every.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, now: time.Now, last: map[string]*kind{}}
}

// Allow reports whether a line of kind key may be written now, and how
// many lines of that kind were left out since the last one written (to be
// logged with it, e.g. as "suppressed").
func (l *Limiter) Allow(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k, ok := l.last[key]
	if !ok {
		if len(l.last) > 10000 { // bounded: forget the kinds seen so far
			l.last = map[string]*kind{}
		}
		l.last[key] = &kind{at: now}
		return true, 0
	}
	if now.Sub(k.at) < l.every {
		k.suppressed++
		return false, 0
	}
	n := k.suppressed
	k.at, k.suppressed = now, 0
	return true, n
}
