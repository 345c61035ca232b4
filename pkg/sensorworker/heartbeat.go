package sensorworker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// heartbeatTimeout bounds one heartbeat (or re-registration) attempt: a
// statement that takes longer than an interval is a failure to retry.
func (s *Service) heartbeatTimeout() time.Duration {
	return min(max(s.cfg.HeartbeatInterval, 2*time.Second), 15*time.Second)
}

// heartbeatLoop beats every interval (failures: how many attempts in a row
// failed before it started). After a failure it retries with a
// jittered exponential backoff capped at the interval, so a worker whose
// database comes back heartbeats again within one interval.
func (s *Service) heartbeatLoop(ctx context.Context, failures int) {
	defer s.wg.Done()
	base := min(max(s.cfg.HeartbeatInterval/4, 10*time.Millisecond), time.Second)
	wait := s.cfg.HeartbeatInterval
	if failures > 0 {
		wait = backoff(failures, base, s.cfg.HeartbeatInterval, s.rnd)
	}
	for {
		if !s.sleep(ctx, wait) {
			return
		}
		fatal, err := s.beat(ctx)
		switch {
		case fatal:
			s.fail(err)
			return
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			failures++
			wait = backoff(failures, base, s.cfg.HeartbeatInterval, s.rnd)
			s.log.Error("heartbeat failed; retrying", "id", s.reg.ID(), "attempt", failures,
				"retry_in", wait.Round(time.Millisecond).String(), "error", err)
		default:
			if failures > 0 {
				s.log.Info("heartbeat succeeded again", "id", s.reg.ID(), "failed_attempts", failures)
			}
			failures = 0
			wait = s.cfg.HeartbeatInterval
		}
	}
}

// firstBeat is the heartbeat Start sends: under loopCtx (cancelled by Stop)
// and ended early by ctx, Start's own context.
func (s *Service) firstBeat(ctx, loopCtx context.Context) (fatal bool, err error) {
	bctx, cancel := context.WithCancel(loopCtx)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	return s.beat(bctx)
}

// beat sends one heartbeat and re-registers a row that was deleted. It
// returns the failure, and whether the service must stop because of it.
func (s *Service) beat(ctx context.Context) (fatal bool, err error) {
	bctx, cancel := context.WithTimeout(ctx, s.heartbeatTimeout())
	defer cancel()
	start := time.Now()
	at, err := s.reg.Heartbeat(bctx)
	if err == nil {
		s.metrics.heartbeats.Inc()
		s.metrics.duration.Observe(time.Since(start).Seconds())
		s.markBeat()
		s.log.Debug("heartbeat", "id", s.reg.ID(), "last_heartbeat", at, "took", time.Since(start).String())
		return false, nil
	}
	switch {
	case errors.Is(err, workers.ErrTakenOver):
		return true, err
	case errors.Is(err, workers.ErrRowGone):
		s.log.Warn("worker row was deleted (pruned?); registering again", "id", s.reg.ID(), "name", s.cfg.Name)
		reg, rerr := s.reg.Register(bctx, workers.RegisterOptions{})
		if rerr == nil {
			s.metrics.registrations.Inc()
			s.markBeat()
			s.log.Info("registered sensor worker again", "id", reg.ID, "name", s.cfg.Name, "new_row", reg.Inserted)
			return false, nil
		}
		if errors.Is(rerr, workers.ErrNameInUse) {
			return true, fmt.Errorf("registering again after the row was deleted: %w", rerr)
		}
		err = rerr
	}
	if ctx.Err() != nil {
		return false, err // stopping: not counted as a failure
	}
	s.metrics.failures.Inc()
	if retryable(err) {
		// The connections may be dead (the server restarted): make the next
		// attempt dial afresh rather than fail on another stale connection.
		s.db.Pool.Reset()
	}
	return false, database.Explain(err)
}

func (s *Service) markBeat() {
	s.mu.Lock()
	s.lastBeat = s.clock.Now()
	s.mu.Unlock()
}
