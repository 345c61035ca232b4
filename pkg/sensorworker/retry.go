package sensorworker

import (
	"context"
	"fmt"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
)

// sleep waits d on the service's clock; false when ctx ended first.
func (s *Service) sleep(ctx context.Context, d time.Duration) bool {
	t := s.clock.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return false
	case <-t.C():
		return true
	}
}

// startupRetry runs fn until it succeeds, fails for a reason that waiting
// does not fix, or the deadline passes.
func startupRetry[T any](ctx context.Context, s *Service, what string, deadline time.Time, fn func(context.Context) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := fn(ctx)
		if err == nil {
			return v, nil
		}
		var zero T
		if ctx.Err() != nil {
			return zero, fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if !retryable(err) {
			return zero, err
		}
		left := deadline.Sub(s.clock.Now())
		if left <= 0 {
			if s.cfg.WaitForDatabase > 0 {
				return zero, fmt.Errorf("%w (gave up after waiting %s for the database: check that the server is up, or raise --wait-for-database)", err, s.cfg.WaitForDatabase)
			}
			return zero, fmt.Errorf("%w (to wait for the database at startup, pass e.g. --wait-for-database 2m)", err)
		}
		d := min(backoff(attempt, 250*time.Millisecond, 5*time.Second, s.rnd), left)
		s.log.Warn("database not reachable; retrying", "while", what, "attempt", attempt,
			"retry_in", d.Round(time.Millisecond).String(), "gives_up_in", left.Round(time.Second).String(), "error", err)
		if !s.sleep(ctx, d) {
			return zero, fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// retryable reports whether a database error may go away by itself: the
// server is unreachable, restarting, out of connections, or a statement
// timed out.
func retryable(err error) bool {
	return database.IsTransient(err)
}

// backoff is the wait before retry n (from 1): base doubled per failure,
// capped at ceiling, then jittered down by up to half so that workers that
// failed together do not retry together.
func backoff(n int, base, ceiling time.Duration, rnd func() float64) time.Duration {
	d := backoffCeiling(n, base, ceiling)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// backoffCeiling is backoff without the jitter: the longest wait before retry n.
func backoffCeiling(n int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}
