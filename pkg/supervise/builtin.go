package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/robfig/cron/v3"
)

// The entrypoints of the built-in sensors (runtime core.sensor.builtin),
// which run inside the worker rather than as processes.
const (
	BuiltinInterval = "interval"
	BuiltinCron     = "cron"
	BuiltinDate     = "date"
)

// BuiltinRuntimeRef is the runtime whose sensors run inside the worker.
const BuiltinRuntimeRef = "core.sensor.builtin"

// The bounds of an interval timer's interval_seconds: a shorter interval
// would spin a core of the worker (and a value past int64 nanoseconds, or
// one that rounds to zero, would too), a longer one is a date timer.
const (
	MinInterval = 10 * time.Millisecond
	MaxInterval = 366 * 24 * time.Hour
)

// schedule says when a built-in timer fires next after a given time; the
// zero time means never again.
type schedule interface {
	Next(after time.Time) time.Time
}

type intervalSchedule struct{ every time.Duration }

func (s intervalSchedule) Next(after time.Time) time.Time { return after.Add(s.every) }

type dateSchedule struct {
	at    time.Time
	fired bool
}

func (s *dateSchedule) Next(after time.Time) time.Time {
	if s.fired {
		return time.Time{}
	}
	s.fired = true
	if s.at.Before(after) {
		return after
	}
	return s.at
}

// cronParser accepts standard five-field expressions and an optional
// leading seconds field, plus descriptors such as @hourly.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseBuiltin checks a built-in sensor's entrypoint and config and returns
// its schedule. The errors name the config key to fix.
func ParseBuiltin(entrypoint string, config map[string]any) (schedule, error) {
	switch entrypoint {
	case BuiltinInterval:
		v, ok := config["interval_seconds"]
		if !ok {
			return nil, errors.New(`built-in interval timer: config.interval_seconds is missing (e.g. "interval_seconds: 60")`)
		}
		secs, ok := number(v)
		if !ok || math.IsNaN(secs) || secs < MinInterval.Seconds() || secs > MaxInterval.Seconds() {
			return nil, fmt.Errorf("built-in interval timer: config.interval_seconds must be a number of seconds from %g to %g (%s), got %v",
				MinInterval.Seconds(), MaxInterval.Seconds(), MaxInterval, v)
		}
		return intervalSchedule{every: time.Duration(secs * float64(time.Second))}, nil
	case BuiltinCron:
		expr, _ := config["expression"].(string)
		if expr == "" {
			return nil, errors.New(`built-in cron timer: config.expression is missing (e.g. "*/10 * * * * *" for every 10 seconds)`)
		}
		s, err := cronParser.Parse(expr)
		if err != nil {
			return nil, fmt.Errorf("built-in cron timer: config.expression %q: %v", expr, err)
		}
		return s, nil
	case BuiltinDate:
		at, _ := config["at"].(string)
		if at == "" {
			return nil, errors.New(`built-in date timer: config.at is missing (an RFC 3339 time, e.g. "2027-01-01T00:00:00Z")`)
		}
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return nil, fmt.Errorf("built-in date timer: config.at %q is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)", at)
		}
		return &dateSchedule{at: t}, nil
	default:
		return nil, fmt.Errorf("built-in sensor: unknown entrypoint %q (want %s, %s or %s)", entrypoint, BuiltinInterval, BuiltinCron, BuiltinDate)
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// TimerPayload is what a built-in timer emits, like Attune's timers.
type TimerPayload struct {
	Timestamp     time.Time `json:"timestamp"`
	ScheduledTime time.Time `json:"scheduled_time"`
}

// runBuiltin fires the schedule until ctx ends, calling emit for every
// trigger of the sensor at each firing. A firing that is late (the worker
// was busy or suspended) fires once, not once per missed tick. An emit
// error that says the fence is stale ends the run: the sensor is no longer
// ours.
func runBuiltin(ctx context.Context, sched schedule, now func() time.Time, emit func(ctx context.Context, payload TimerPayload) error) error {
	next := sched.Next(now())
	for !next.IsZero() {
		if !sleep(ctx, time.Until(next)) {
			return nil
		}
		fired := now()
		if err := emit(ctx, TimerPayload{Timestamp: fired.UTC(), ScheduledTime: next.UTC()}); err != nil {
			if errors.Is(err, fence.ErrStale) || ctx.Err() != nil {
				return err
			}
		}
		n := sched.Next(next)
		for !n.IsZero() && !n.After(fired) {
			n = sched.Next(n) // skip missed ticks
		}
		next = n
	}
	<-ctx.Done() // a one-shot timer that has fired stays "running", idle
	return nil
}
