package supervise

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/fence"
)

func TestParseBuiltinRejectsBadConfigWithTheKey(t *testing.T) {
	cases := []struct {
		entry  string
		config map[string]any
		want   string
	}{
		{"interval", map[string]any{}, "config.interval_seconds is missing"},
		{"interval", map[string]any{"interval_seconds": -1.0}, "must be a number of seconds from 0.01 to"},
		{"interval", map[string]any{"interval_seconds": "ten"}, "must be a number"},
		{"cron", map[string]any{}, "config.expression is missing"},
		{"cron", map[string]any{"expression": "61 * * * *"}, `config.expression "61 * * * *"`},
		{"date", map[string]any{"at": "tomorrow"}, "not an RFC 3339 time"},
		{"webhook", nil, `unknown entrypoint "webhook"`},
	}
	for _, c := range cases {
		_, err := ParseBuiltin(c.entry, c.config)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseBuiltin(%s, %v) = %v, want an error containing %q", c.entry, c.config, err, c.want)
		}
	}
}

func TestCronScheduleTakesSeconds(t *testing.T) {
	s, err := ParseBuiltin("cron", map[string]any{"expression": "*/10 * * * * *"})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC)
	if got := s.Next(base); !got.Equal(base.Add(7 * time.Second)) {
		t.Errorf("next after :03 = %v, want :10", got)
	}
	if _, err := ParseBuiltin("cron", map[string]any{"expression": "0 * * * *"}); err != nil {
		t.Errorf("five-field expression refused: %v", err)
	}
}

func TestIntervalTimerEmitsTicks(t *testing.T) {
	s, err := ParseBuiltin("interval", map[string]any{"interval_seconds": 0.05})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []TimerPayload
	done := make(chan error, 1)
	go func() {
		done <- runBuiltin(ctx, s, time.Now, func(_ context.Context, p TimerPayload) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, p)
			if len(got) == 3 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("interval timer did not tick three times in 10s")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if d := got[i].ScheduledTime.Sub(got[i-1].ScheduledTime); d != 50*time.Millisecond {
			t.Errorf("scheduled times %d apart by %s, want 50ms", i, d)
		}
		if got[i].Timestamp.Before(got[i].ScheduledTime) {
			t.Errorf("tick %d fired before its scheduled time", i)
		}
	}
}

func TestDateTimerFiresOnceAndStopsOnStaleFence(t *testing.T) {
	at := time.Now().Add(20 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	s, err := ParseBuiltin("date", map[string]any{"at": at})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = runBuiltin(context.Background(), s, time.Now, func(context.Context, TimerPayload) error {
		calls++
		return fence.ErrStale
	})
	if err != fence.ErrStale || calls != 1 {
		t.Fatalf("runBuiltin = %v after %d calls, want fence.ErrStale after 1", err, calls)
	}
}

// An interval timer's interval is bounded where it is read: a value that
// overflows a duration, rounds to zero or is shorter than MinInterval would
// spin a core of the worker, and is refused with the bounds.
func TestParseBuiltinBoundsTheInterval(t *testing.T) {
	for _, v := range []any{1e10, 1e-9, 1e300, 1e-300, 0.0, -1.0, 0.005, math.Inf(1), math.NaN(), 31622401} {
		if _, err := ParseBuiltin(BuiltinInterval, map[string]any{"interval_seconds": v}); err == nil || !strings.Contains(err.Error(), "from 0.01 to 3.16224e+07") {
			t.Errorf("interval_seconds %v: %v, want a refusal with the bounds", v, err)
		}
	}
	for _, v := range []any{0.01, 0.05, 1, 60, 31622400} {
		s, err := ParseBuiltin(BuiltinInterval, map[string]any{"interval_seconds": v})
		if err != nil {
			t.Errorf("interval_seconds %v: %v", v, err)
			continue
		}
		now := time.Now()
		if next := s.Next(now); !next.After(now) {
			t.Errorf("interval_seconds %v: next firing %v is not after %v", v, next, now)
		}
	}
}
