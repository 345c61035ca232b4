package sensorworker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/sensors"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// realWorker starts a sensor worker that places and runs sensors on the
// real clock (no sandbox: built-in sensors only).
func realWorker(t *testing.T, db *dbtest.DB, name string, runtimes ...string) (*Service, *testsupport.SyncBuffer) {
	t.Helper()
	logs := &testsupport.SyncBuffer{}
	det := &detector{results: []detect.Result{result(runtimes...)}}
	svc, err := New(Config{Name: name, Host: "test-host", HeartbeatInterval: 300 * time.Millisecond, Version: "9.9.9",
		ShutdownTimeout: 10 * time.Second,
		Sensors: SensorsConfig{Enabled: true, StopTimeout: time.Second, QuarantineAfter: 5, Budget: 2,
			EventsListen: "127.0.0.1:0", EventRate: 1000}},
		Options{
			Connect: func(ctx context.Context) (*database.DB, error) {
				return database.Open(ctx, database.Options{URL: db.URL, Schema: db.Schema})
			},
			Detect: det.Detect,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatalf("Start %s: %v\n%s", name, err, logs)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return svc, logs
}

func addTimer(t *testing.T, db *dbtest.DB, manifest string) {
	t.Helper()
	ss, err := sensors.ParseManifest([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sensors.Add(context.Background(), db.Handle(t), ss, false); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *dbtest.DB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool, logs ...*testsupport.SyncBuffer) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range logs {
				b.WriteString(l.String())
			}
			t.Fatalf("%s: not within %s\nlogs:\n%s", what, d, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkerRunsBuiltinTimerAndHandsItOverOnShutdown: a worker claims a
// built-in interval timer, its ticks land in event under its fence; when it
// stops, it releases the sensor and the other worker takes it at once.
func TestWorkerRunsBuiltinTimerAndHandsItOverOnShutdown(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	addTimer(t, db, `
ref: demo.every_200ms
label: Every 200 ms
runtime: core.sensor.builtin
entrypoint: interval
config: {interval_seconds: 0.2}
triggers: [{ref: demo.tick}]
`)
	a, logsA := realWorker(t, db, "worker-a", "built-in sensor", "shell")
	waitFor(t, "worker-a emits ticks", 20*time.Second, func() bool {
		return count(t, db, `SELECT count(*) FROM event WHERE source_ref = 'demo.every_200ms' AND trigger_ref = 'demo.tick'`) >= 3
	}, logsA)
	b, logsB := realWorker(t, db, "worker-b", "built-in sensor")
	_ = b
	if err := a.Stop(); err != nil {
		t.Fatalf("stopping worker-a: %v", err)
	}
	stoppedAt := time.Now()
	waitFor(t, "worker-b takes the timer over", 10*time.Second, func() bool {
		return count(t, db, `SELECT count(*) FROM event e JOIN sensor_workload_assignment a ON a.workload = e.source_workload
			JOIN worker w ON w.id = a.worker WHERE w.name = 'worker-b' AND e.source_generation = a.generation`) >= 1
	}, logsA, logsB)
	if gap := time.Since(stoppedAt); gap > 5*time.Second {
		t.Errorf("handoff took %s; a released sensor should be claimed at once", gap)
	}
	var reason string
	if err := db.Pool.QueryRow(context.Background(), `SELECT end_reason FROM sensor_ownership o JOIN worker w ON w.id = o.worker
		WHERE w.name = 'worker-a' AND ended_at IS NOT NULL ORDER BY o.id DESC LIMIT 1`).Scan(&reason); err != nil || reason != "released" {
		t.Errorf("ledger: worker-a's span ended with %q, %v; want released", reason, err)
	}
	// No event of worker-a's generations after it released.
	if n := count(t, db, `SELECT count(*) FROM event e JOIN sensor_ownership o ON o.workload = e.source_workload
		AND e.created > o.ended_at AND o.worker = (SELECT id FROM worker WHERE name = 'worker-a')
		WHERE e.source_generation <= o.generation`); n != 0 {
		t.Errorf("%d events of worker-a's generations created after its span ended", n)
	}
}

// TestQuarantineOfUnrunnableSensor: a sensor whose entrypoint does not
// exist is claimed, quarantined at once with the reason on the workload
// (not crash-looped), and sensor list shows it.
func TestQuarantineOfUnrunnableSensor(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	addTimer(t, db, `
ref: demo.nowhere
label: Missing entrypoint
runtime: core.sensor.shell
entrypoint: /nonexistent/sensor.sh
triggers: [{ref: demo.never}]
`)
	_, logs := realWorker(t, db, "worker-q", "shell")
	waitFor(t, "the sensor is quarantined with a reason", 20*time.Second, func() bool {
		return count(t, db, `SELECT count(*) FROM sensor_workload_state WHERE state = 'quarantined' AND last_reason LIKE '%/nonexistent/sensor.sh%'`) == 1
	}, logs)
	l, err := sensors.List(context.Background(), db.Handle(t), sensors.ListOptions{})
	if err != nil || len(l.Sensors) != 1 || l.Sensors[0].State != sensors.StateQuarantined {
		t.Fatalf("sensor list: %+v, %v; want one quarantined sensor", l, err)
	}
}

// TestUpdatedDefinitionReachesItsOwner: `sensor add --update` of a sensor a
// worker runs reaches that worker at its next tick (the renewal reports the
// definition's new version): the sensor restarts, under a new generation,
// with the new definition — here a timer of 0.1 s that becomes one of 1 s.
func TestUpdatedDefinitionReachesItsOwner(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	const def = `
ref: demo.retimed
runtime: core.sensor.builtin
entrypoint: interval
config: {interval_seconds: %g}
triggers: [{ref: demo.tick}]
`
	addTimer(t, db, fmt.Sprintf(def, 0.1))
	_, logs := realWorker(t, db, "worker-u", "built-in sensor")
	waitFor(t, "the first definition's events", 20*time.Second, func() bool {
		return count(t, db, `SELECT count(*) FROM event WHERE trigger_ref = 'demo.tick'`) >= 5
	}, logs)
	oldGen := count(t, db, `SELECT max(source_generation) FROM event`)
	ss, err := sensors.ParseManifest(fmt.Appendf(nil, def, 1.0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sensors.Add(context.Background(), db.Handle(t), ss, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart with the new definition", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "the sensor's definition changed; restarting it with the new one") &&
			count(t, db, `SELECT count(*) FROM event WHERE source_generation > $1`, oldGen) >= 1
	}, logs)
	// Under the new definition it fires once a second, not ten times.
	time.Sleep(2500 * time.Millisecond)
	if n := count(t, db, `SELECT count(*) FROM event WHERE source_generation > $1`, oldGen); n < 2 || n > 4 {
		t.Errorf("%d events in 2.5 s under the new definition (interval 1 s)", n)
	}
}

// TestStartRetriedAfterADatabaseError: when beginning a run fails on the
// database (here a trigger refuses the generation bump of a start for a
// while, as a lock and a statement timeout would), the start is retried
// until it happens; the sensor runs once the database lets it, rather than
// its lease being renewed for a process that never started.
func TestStartRetriedAfterADatabaseError(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `
		CREATE TABLE refuse_starts (on_ boolean NOT NULL);
		INSERT INTO refuse_starts VALUES (true);
		CREATE FUNCTION refuse_start() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF OLD.worker IS NOT NULL AND NEW.worker = OLD.worker AND NEW.generation <> OLD.generation
			   AND (SELECT on_ FROM refuse_starts) THEN
				RAISE EXCEPTION 'starts refused for this test';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_start BEFORE UPDATE ON sensor_workload_assignment
			FOR EACH ROW EXECUTE FUNCTION refuse_start();`); err != nil {
		t.Fatal(err)
	}
	addTimer(t, db, `
ref: demo.late_start
runtime: core.sensor.builtin
entrypoint: interval
config: {interval_seconds: 0.1}
triggers: [{ref: demo.tick}]
`)
	_, logs := realWorker(t, db, "worker-r", "built-in sensor")
	waitFor(t, "a refused start", 20*time.Second, func() bool {
		return strings.Contains(logs.String(), "starting a run failed; retrying")
	}, logs)
	if n := count(t, db, `SELECT count(*) FROM event`); n != 0 {
		t.Fatalf("%d events while starts were refused", n)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE refuse_starts SET on_ = false`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sensor to start once the database lets it", 20*time.Second, func() bool {
		return count(t, db, `SELECT count(*) FROM event WHERE source_ref = 'demo.late_start'`) >= 2
	}, logs)
}
