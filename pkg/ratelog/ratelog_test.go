package ratelog

import (
	"testing"
	"time"
)

func TestLimiterWritesOneLineAWindowAndCountsTheRest(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(10 * time.Second)
	l.now = func() time.Time { return now }
	written, left := 0, 0
	for i := range 4683 { // a full disk: every event write fails for 26 s
		now = now.Add(26 * time.Second / 4683)
		if ok, n := l.Allow("recording an event failed/demo.ticker"); ok {
			written++
			left += n
		}
		_ = i
	}
	if written < 2 || written > 4 {
		t.Errorf("%d lines written over 26 s, want one per 10 s window", written)
	}
	if left == 0 {
		t.Error("the lines left out were not counted")
	}
	// Another kind is not held back by the first.
	if ok, _ := l.Allow("placement tick failed"); !ok {
		t.Error("the first line of another kind was held back")
	}
}
