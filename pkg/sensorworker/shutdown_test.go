package sensorworker

import (
	"context"
	"testing"
	"time"
)

// A cancel (SIGINT/SIGTERM) while the first heartbeat waits on the server
// stops the service within ShutdownTimeout, and it deregisters. The
// heartbeat waits on an advisory lock that a trigger takes for heartbeats
// only (an UPDATE that keeps status and meta); on main the first heartbeat
// ignored the cancel and ran into its own 15 s timeout.
func TestServiceRunStopsDuringFirstHeartbeat(t *testing.T) {
	t.Parallel()
	const shutdown = 3 * time.Second
	start := time.Now()
	h := newHarness(t, Config{HeartbeatInterval: 30 * time.Second, ShutdownTimeout: shutdown})
	h.exec(`CREATE FUNCTION hold_heartbeat() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.status = 'active' AND OLD.status = 'active' AND NEW.meta IS NOT DISTINCT FROM OLD.meta THEN
				PERFORM pg_advisory_xact_lock(4242);
			END IF;
			RETURN NEW;
		END $$`)
	h.exec(`CREATE TRIGGER hold_heartbeat BEFORE UPDATE ON worker FOR EACH ROW EXECUTE FUNCTION hold_heartbeat()`)
	bg := context.Background()
	locker, err := h.db.Pool.Acquire(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Release()
	if _, err := locker.Exec(bg, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	defer locker.Exec(bg, `SELECT pg_advisory_unlock_all()`)

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := h.db.Pool.QueryRow(bg, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n)
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first heartbeat never waited on the lock\nlogs:\n%s", h.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the first heartbeat waits on the lock (%s after the test began)", time.Since(start).Round(time.Millisecond))
	begin := time.Now()
	cancel()
	select {
	case err := <-done:
		if took := time.Since(begin); err != nil || took > shutdown+time.Second {
			t.Errorf("Run = %v after %s; want nil within the %s shutdown timeout\nlogs:\n%s", err, took, shutdown, h.logs)
		} else {
			t.Logf("Run returned %s after the cancel", took.Round(time.Millisecond))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return 30s after the cancel\nlogs:\n%s", h.logs)
	}
	if r := h.mustRow(); r.Status != "inactive" {
		t.Errorf("status after Run = %s; want inactive\nlogs:\n%s", r.Status, h.logs)
	}
	if got := testCounter(h.svc.metrics.failures); got != 0 {
		t.Errorf("heartbeat failures = %v; want 0 (an interrupted heartbeat is not a failure)", got)
	}
}
