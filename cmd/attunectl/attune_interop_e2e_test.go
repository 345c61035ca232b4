package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// attuneService runs the statements Attune's sensor service runs on its
// sensor workloads, transcribed from attune-system/attune
// crates/common/src/repositories/sensor_workload.rs at commit
// 03eeaa5b3f0cee74dcc0328b8294e928a4f9f362 (ensure_default_with_conn,
// acquire_or_renew_with_conn, begin_process_with_conn, renew_with_conn,
// release). Later commits pin the workload through sensor.managed_release
// and pack_release_executable instead of pack.active_release; the
// statements' shape (a pinned row inserted ON CONFLICT DO NOTHING, the
// lease taken only when free, expired or already its own, the generation
// bumped per process start, every write fenced) is the same. The one
// change: $4 is cast to timestamptz where sqlx binds a typed timestamp and
// pgx lets the server infer it.
type attuneService struct {
	pool     *pgxpool.Pool
	worker   int64
	instance string
}

// ensureDefault is ensure_default_with_conn: the pinned default workload.
func (a attuneService) ensureDefault(ctx context.Context, tx pgx.Tx, sensor int64) (int64, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO sensor_workload (sensor, workload_key, pack_release, pack_release_digest, executable_snapshot)
		SELECT s.id, $2, pr.id, pr.digest, jsonb_build_object(
			'release', jsonb_build_object('id', pr.id, 'digest', pr.digest, 'content_path', pr.content_path),
			'sensor', to_jsonb(s), 'runtime', to_jsonb(r),
			'runtime_versions', COALESCE((SELECT jsonb_agg(to_jsonb(rv) ORDER BY rv.version, rv.id) FROM runtime_version rv WHERE rv.runtime = r.id), '[]'::jsonb))
		FROM sensor s JOIN pack p ON p.id = s.pack JOIN pack_release pr ON pr.id = p.active_release
		JOIN runtime r ON r.id = s.runtime WHERE s.id = $1
		ON CONFLICT (sensor, workload_key) DO NOTHING`, sensor, "default"); err != nil {
		return 0, err
	}
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM sensor_workload WHERE sensor = $1 AND workload_key = $2`, sensor, "default").Scan(&id)
	return id, err
}

// acquire is acquire_or_renew_with_conn: it returns the lease's generation,
// or ok false when another owner holds it (HeldByOther).
func (a attuneService) acquire(ctx context.Context, sensor int64, leaseSeconds int) (workload, generation int64, ok bool, err error) {
	tx, err := a.pool.Begin(ctx)
	if err != nil {
		return 0, 0, false, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if workload, err = a.ensureDefault(ctx, tx, sensor); err != nil {
		return 0, 0, false, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sensor_workload_assignment (workload) VALUES ($1) ON CONFLICT (workload) DO NOTHING`, workload); err != nil {
		return 0, 0, false, err
	}
	var owner *int64
	var instance *string
	var expires *time.Time
	if err := tx.QueryRow(ctx, `SELECT worker, worker_instance::text, lease_expires_at FROM sensor_workload_assignment
		WHERE workload = $1 FOR UPDATE`, workload).Scan(&owner, &instance, &expires); err != nil {
		return 0, 0, false, err
	}
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return 0, 0, false, err
	}
	same := owner != nil && *owner == a.worker && instance != nil && *instance == a.instance
	if !(owner == nil || (expires != nil && !expires.After(now)) || same) {
		return workload, 0, false, nil
	}
	if err := tx.QueryRow(ctx, `UPDATE sensor_workload_assignment AS assignment
		SET worker = $2, worker_instance = $3,
		    lease_expires_at = $4::timestamptz + make_interval(secs => $5::double precision),
		    assigned_at = CASE WHEN worker = $2 AND worker_instance = $3 THEN assigned_at ELSE $4::timestamptz END,
		    renewed_at = $4::timestamptz
		WHERE assignment.workload = $1
		RETURNING generation`, workload, a.worker, a.instance, now, leaseSeconds).Scan(&generation); err != nil {
		return 0, 0, false, err
	}
	return workload, generation, true, tx.Commit(ctx)
}

// beginProcess is begin_process_with_conn: the generation bump of a
// process start, fenced.
func (a attuneService) beginProcess(ctx context.Context, workload, generation int64) (int64, bool, error) {
	err := a.pool.QueryRow(ctx, `UPDATE sensor_workload_assignment AS assignment
		SET generation = generation + 1, renewed_at = clock_timestamp()
		FROM sensor_workload AS workload
		WHERE assignment.workload = $1 AND assignment.workload = workload.id
		  AND assignment.worker = $2 AND assignment.worker_instance = $3 AND assignment.generation = $4
		  AND assignment.lease_expires_at > clock_timestamp()
		RETURNING assignment.generation`, workload, a.worker, a.instance, generation).Scan(&generation)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return generation, err == nil, err
}

// renew is renew_with_conn.
func (a attuneService) renew(ctx context.Context, workload, generation int64, leaseSeconds int) (bool, error) {
	tag, err := a.pool.Exec(ctx, `UPDATE sensor_workload_assignment AS assignment
		SET lease_expires_at = clock_timestamp() + make_interval(secs => $5::double precision),
		    renewed_at = clock_timestamp()
		FROM sensor_workload AS workload
		WHERE assignment.workload = $1 AND assignment.workload = workload.id
		  AND assignment.worker = $2 AND assignment.worker_instance = $3 AND assignment.generation = $4
		  AND assignment.lease_expires_at > clock_timestamp()`, workload, a.worker, a.instance, generation, leaseSeconds)
	return tag.RowsAffected() == 1, err
}

// release is release.
func (a attuneService) release(ctx context.Context, workload, generation int64) (bool, error) {
	tag, err := a.pool.Exec(ctx, `UPDATE sensor_workload_assignment
		SET worker = NULL, worker_instance = NULL, lease_expires_at = NULL, assigned_at = NULL, renewed_at = NULL
		WHERE workload = $1 AND worker = $2 AND worker_instance = $3 AND generation = $4`, workload, a.worker, a.instance, generation)
	return tag.RowsAffected() == 1, err
}

// TestAttuneAndAttunectlShareWorkloads: Attune's sensor service (its own
// statements, above) and two attunectl workers on one database of Attune's
// newest schema. Attune pins every pack sensor's workload; each side runs
// what it holds; neither takes a live lease of the other; what one
// releases, or lets lapse, the other takes; attunectl writes no workload of
// its own for a pack's sensor; and the ledger never shows two owners.
func TestAttuneAndAttunectlShareWorkloads(t *testing.T) {
	t.Parallel()
	db, environ := attuneEra(t)
	ctx := context.Background()
	// Six pack sensors (built-in timers, so both sides can run them here),
	// each with a trigger and an enabled rule.
	for i := 1; i <= 6; i++ {
		execSQL(t, db.Pool, fmt.Sprintf(`
			WITH s AS (INSERT INTO sensor (ref, pack, pack_ref, label, entrypoint, runtime, runtime_ref, enabled, config)
			           SELECT 'acme.timer%[1]d', 1, 'acme', 'Timer', 'interval', id, ref, true, '{"interval_seconds": 0.5}'
			           FROM runtime WHERE ref = 'core.sensor.builtin' RETURNING id, ref),
			     t AS (INSERT INTO trigger (ref, pack, pack_ref, label, sensor, sensor_ref)
			           SELECT 'acme.tick%[1]d', 1, 'acme', 'Tick', id, ref FROM s RETURNING id, ref)
			INSERT INTO rule (ref, pack, pack_ref, label, action_ref, trigger, trigger_ref, enabled)
			SELECT 'acme.on_tick%[1]d', 1, 'acme', 'On tick', 'acme.notify', id, ref, true FROM t`, i))
	}
	sensorID := func(i int) int64 {
		var id int64
		if err := db.Pool.QueryRow(ctx, `SELECT id FROM sensor WHERE ref = $1`, fmt.Sprintf("acme.timer%d", i)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	owner := func(i int) string {
		var name string
		_ = db.Pool.QueryRow(ctx, `SELECT coalesce(w.name, '') FROM sensor s JOIN sensor_workload sw ON sw.sensor = s.id
			JOIN sensor_workload_assignment a ON a.workload = sw.id
			LEFT JOIN worker w ON w.id = a.worker AND a.lease_expires_at > clock_timestamp()
			WHERE s.ref = $1`, fmt.Sprintf("acme.timer%d", i)).Scan(&name)
		return name
	}

	// Attune's sensor service creates the six pinned workloads and runs
	// timers 1-3 (lease 3 s, renewed every 0.5 s).
	attune := attuneService{pool: db.Pool, worker: 2, instance: "3f1c2a9e-6b1d-4c1e-9d5a-0e7f4b2c8a11"}
	type held struct{ workload, generation int64 }
	mine := map[int]*held{}
	for i := 1; i <= 6; i++ {
		w, g, ok, err := attune.acquire(ctx, sensorID(i), 3)
		if err != nil || !ok {
			t.Fatalf("Attune's acquire of timer %d: %v %v", i, ok, err)
		}
		if i > 3 {
			if ok, err := attune.release(ctx, w, g); err != nil || !ok {
				t.Fatalf("Attune's release of timer %d: %v %v", i, ok, err)
			}
			continue
		}
		if g, ok, err = attune.beginProcess(ctx, w, g); err != nil || !ok {
			t.Fatalf("Attune's begin_process of timer %d: %v %v", i, ok, err)
		}
		mine[i] = &held{w, g}
	}
	renewing := map[int]bool{1: true, 2: true, 3: true}
	stopRenew := make(chan struct{})
	renewed := make(chan error, 1)
	go func() {
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopRenew:
				renewed <- nil
				return
			case <-tk.C:
			}
			for i, h := range mine {
				if !renewing[i] {
					continue
				}
				if ok, err := attune.renew(ctx, h.workload, h.generation, 3); err != nil || !ok {
					renewed <- fmt.Errorf("Attune's renewal of timer %d failed: ok %v, %v", i, ok, err)
					return
				}
			}
		}
	}()

	// Two attunectl workers take timers 4-6, never 1-3.
	a := start(t, environ, "sensor", "run", "--name", "ac-a", "--heartbeat-interval", "300ms", "--runtimes", "built-in sensor")
	b := start(t, environ, "sensor", "run", "--name", "ac-b", "--heartbeat-interval", "300ms", "--runtimes", "built-in sensor")
	waitUntil(t, a, 30*time.Second, "attunectl to hold timers 4-6", func() bool {
		for i := 4; i <= 6; i++ {
			if o := owner(i); o != "ac-a" && o != "ac-b" {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	for i := 1; i <= 3; i++ {
		if o := owner(i); o != "sensor-attune-1" {
			t.Errorf("timer %d is held by %q while Attune renews it", i, o)
		}
	}
	// Attune's own writes under its fences keep working.
	if _, _, ok, _ := attune.acquire(ctx, sensorID(4), 3); ok {
		t.Error("Attune acquired timer 4, which attunectl holds")
	}

	// Attune releases timer 1 and stops renewing timer 2 (its process
	// died): attunectl takes both, timer 2 only once the lease lapsed.
	delete(renewing, 1)
	delete(renewing, 2)
	if ok, err := attune.release(ctx, mine[1].workload, mine[1].generation); err != nil || !ok {
		t.Fatalf("Attune's release of timer 1: %v %v", ok, err)
	}
	waitUntil(t, a, 15*time.Second, "attunectl to take the released and the lapsed timers", func() bool {
		o1, o2 := owner(1), owner(2)
		return (o1 == "ac-a" || o1 == "ac-b") && (o2 == "ac-a" || o2 == "ac-b")
	})
	close(stopRenew)
	if err := <-renewed; err != nil {
		t.Error(err)
	}

	// attunectl stops: it releases, and Attune's acquire then succeeds.
	stopSensor(t, a, db.Pool, "ac-a")
	stopSensor(t, b, db.Pool, "ac-b")
	if _, _, ok, err := attune.acquire(ctx, sensorID(4), 3); err != nil || !ok {
		t.Errorf("Attune could not acquire timer 4 after attunectl released it: %v %v", ok, err)
	}

	var unpinned, overlaps, takenOver, events int
	if err := db.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM sensor_workload WHERE pack_release IS NULL),
		(SELECT count(*) FROM sensor_ownership x JOIN sensor_ownership y ON x.workload = y.workload AND x.id < y.id
		 WHERE y.started_at < coalesce(x.ended_at, 'infinity')),
		(SELECT count(*) FROM sensor_ownership WHERE end_reason = 'taken_over'),
		(SELECT count(*) FROM event WHERE source_ref LIKE 'acme.timer%')`).Scan(&unpinned, &overlaps, &takenOver, &events); err != nil {
		t.Fatal(err)
	}
	if unpinned != 0 || overlaps != 0 || takenOver != 0 {
		t.Errorf("unpinned workloads %d, overlapping ownership spans %d, spans ended by a takeover %d: want 0 each", unpinned, overlaps, takenOver)
	}
	if events == 0 {
		t.Error("attunectl's timers emitted nothing")
	}
}
