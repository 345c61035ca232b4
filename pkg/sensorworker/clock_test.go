package sensorworker

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock whose time moves only when the test calls Advance,
// so that the loops' timers fire exactly when the test says.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []*fakeTimer
	created int
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	d     time.Duration
	ch    chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), d: d, ch: make(chan time.Time, 1)}
	c.created++
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.pending = append(c.pending, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pending {
		if p == t {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the time forward and fires every timer that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.pending[:0]
	for _, t := range c.pending {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.pending = kept
}

// Created is how many timers were made so far.
func (c *fakeClock) Created() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// Pending returns the durations of the timers not yet fired.
func (c *fakeClock) Pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.pending {
		out = append(out, t.d)
	}
	return out
}

// waitTimers waits until at least n timers were created in total and n'
// (pending) are waiting: the loops have done their work and sleep again.
func (c *fakeClock) waitTimers(t testing.TB, created, pending int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c.Created() >= created && len(c.Pending()) >= pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d timers created (have %d) and %d pending (have %v)", created, c.Created(), pending, c.Pending())
		}
		time.Sleep(2 * time.Millisecond)
	}
}
