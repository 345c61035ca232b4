package sensorworker

import (
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/workers"
)

// reverifyLoop re-runs detection every ReverifyInterval; a failure is
// retried sooner, with backoff capped at a minute.
func (s *Service) reverifyLoop(ctx context.Context) {
	defer s.wg.Done()
	failures := 0
	for {
		wait := s.cfg.ReverifyInterval
		if failures > 0 {
			wait = backoff(failures, time.Second, min(s.cfg.ReverifyInterval, time.Minute), s.rnd)
		}
		if !s.sleep(ctx, wait) {
			return
		}
		if err := s.reverify(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			s.log.Warn("re-verifying runtimes failed; keeping the advertised ones", "attempt", failures, "error", err)
			continue
		}
		failures = 0
	}
}

// reverify runs detection again and, when the available runtimes or their
// versions changed, updates the capabilities and logs the difference.
func (s *Service) reverify(ctx context.Context) error {
	res, err := s.opts.Detect(ctx, s.db)
	if err != nil {
		return err
	}
	s.mu.Lock()
	prev := s.result
	s.mu.Unlock()
	// A runtime whose check failed for a passing local reason (EMFILE,
	// ENOMEM, EAGAIN, the detection deadline) keeps its last result: the
	// row is not changed for it.
	res, kept := KeepLastGood(prev, res)
	for _, rr := range kept {
		s.log.Warn("runtime check failed transiently; keeping its last result", "ref", rr.Ref, "reason", rr.Reason)
	}
	added, removed := runtimeDiff(prev.Available, res.Available)
	if len(added) == 0 && len(removed) == 0 && maps.Equal(prev.Versions, res.Versions) {
		s.log.Debug("re-verified runtimes: unchanged", "runtimes", res.Available)
		return nil
	}
	caps := BuildCapabilities(s.cfg, res)
	if err := s.reg.UpdateCapabilities(ctx, caps); err != nil &&
		!errors.Is(err, workers.ErrRowGone) && !errors.Is(err, workers.ErrTakenOver) {
		// (A lost row is the heartbeat's business: it registers again with
		// these capabilities, or stops.)
		return err
	}
	s.mu.Lock()
	s.result = res
	s.mu.Unlock()
	s.metrics.setRuntimes(prev.Available, res.Available)
	for _, name := range removed {
		for _, rt := range res.Runtimes {
			if rt.Name != "" && strings.EqualFold(rt.Name, name) {
				s.log.Info("runtime no longer available", "ref", rt.Ref, "name", name, "reason", rt.Reason)
			}
		}
	}
	s.log.Info("runtimes changed; capabilities updated", "id", s.reg.ID(), "added", added, "removed", removed,
		"runtimes", res.Available, "versions", res.Versions)
	return nil
}
