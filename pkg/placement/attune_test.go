package placement_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/sensors"
)

// attunectl's migrations adopt an Attune database: no table is created
// twice, Attune's columns are untouched, an Attune sensor service's live
// lease is respected, and down leaves Attune's objects in place.
func TestAttuneShapedDatabase(t *testing.T) {
	d := dbtest.NewEmpty(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fixture, err := os.ReadFile("testdata/attune_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(ctx, database.Options{URL: d.URL, Schema: "attune"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Pool.Exec(ctx, "CREATE SCHEMA attune"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, string(fixture)); err != nil {
		t.Fatalf("loading the Attune fixture: %v", err)
	}
	columns := func() map[string]int {
		rows, err := db.Pool.Query(ctx, `SELECT table_name, count(*) FROM information_schema.columns
			WHERE table_schema = 'attune' GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var n string
			var c int
			_ = rows.Scan(&n, &c)
			out[n] = c
		}
		return out
	}
	before := columns()
	if err := database.MigrateUp(ctx, db); err != nil {
		t.Fatalf("migrating the Attune database: %v", err)
	}
	if err := db.Introspect(ctx); err != nil {
		t.Fatal(err)
	}
	after := columns()
	for _, table := range []string{"sensor", "trigger", "sensor_workload", "sensor_workload_assignment", "runtime"} {
		if before[table] != after[table] {
			t.Errorf("%s had %d columns, has %d after migrating: Attune's table was changed", table, before[table], after[table])
		}
	}
	// attunectl's marked additions, nothing else: event.source_workload and
	// source_generation (00030); worker.heartbeat_grace (00010) and
	// cordoned_by_name (00021).
	if after["event"] != before["event"]+2 {
		t.Errorf("event had %d columns, has %d: want only source_workload and source_generation added", before["event"], after["event"])
	}
	if after["worker"] != before["worker"]+2 {
		t.Errorf("worker had %d columns, has %d: want only heartbeat_grace and cordoned_by_name added", before["worker"], after["worker"])
	}
	var tables int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename IN ('sensor', 'sensor_workload_assignment')`).Scan(&tables)
	if tables != 2 {
		t.Errorf("%d sensor/assignment tables across schemas, want 2 (no duplicates)", tables)
	}
	var open int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor_ownership WHERE ended_at IS NULL AND worker_name = 'attune-sensor-1'`).Scan(&open)
	if open != 1 {
		t.Errorf("ledger has %d open spans for Attune's owner, want 1 seeded by the migration", open)
	}

	// An attunectl worker on the same database: it takes the free sensor
	// (its runtime by Attune's name "Shell"), never the one Attune holds,
	// until Attune's lease has expired.
	e := &env{t: t, db: db, pool: db.Pool, interval: 300 * time.Millisecond}
	if _, err := sensors.EnsureWorkloads(ctx, db); err != nil {
		t.Fatal(err)
	}
	w := e.worker(spec{name: "attunectl-1", runtimes: []string{"shell"}})
	for i := 0; i < 3; i++ {
		e.tick(w)
	}
	own := e.owners()
	if own["acme.free"] != "attunectl-1" || own["acme.owned"] != "attune-sensor-1" {
		t.Fatalf("owners %v: want acme.free by attunectl-1 and acme.owned still by attune-sensor-1", own)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE sensor_workload_assignment SET lease_expires_at = now() - interval '1 second' WHERE workload = 1`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4 && e.owners()["acme.owned"] != "attunectl-1"; i++ {
		time.Sleep(e.interval)
		e.tick(w)
	}
	if o := e.owners()["acme.owned"]; o != "attunectl-1" {
		t.Fatalf("acme.owned owned by %q after Attune's lease expired, want attunectl-1", o)
	}
	var gen int64
	_ = db.Pool.QueryRow(ctx, `SELECT generation FROM sensor_workload_assignment WHERE workload = 1`).Scan(&gen)
	// Attune's acquire keeps the generation and its begin_process bumps
	// it (crates/common/src/repositories/sensor_workload.rs,
	// acquire_or_renew_with_conn and begin_process_with_conn, commit
	// 03eeaa5b3f0cee74dcc0328b8294e928a4f9f362): so does attunectl's claim.
	if gen != 3 {
		t.Errorf("generation %d after the claim, want Attune's 3, unchanged until a process starts", gen)
	}
	if r := e.ledgerReasons(); r["expired"] != 1 {
		t.Errorf("ledger %v, want Attune's span ended expired", r)
	}
	// A sensor added by attunectl lands in Attune's table.
	e.addSensors(sensors.Sensor{Ref: "acme.added", Runtime: "core.shell", Entrypoint: "added.sh", Triggers: []sensors.Trigger{{Ref: "acme.fired"}}})

	// Down to before attunectl's phase-2 migrations: Attune's tables stay
	// with their rows, attunectl's own objects go.
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.DownTo(ctx, 4); err != nil {
		t.Fatalf("migrating down: %v", err)
	}
	var sensorsLeft int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor`).Scan(&sensorsLeft); err != nil || sensorsLeft != 3 {
		t.Errorf("after down, sensor holds %d rows (%v), want Attune's table kept with 3", sensorsLeft, err)
	}
	var gone bool
	_ = db.Pool.QueryRow(ctx, `SELECT to_regclass('sensor_ownership') IS NULL AND to_regclass('worker_drain') IS NULL`).Scan(&gone)
	if !gone {
		t.Errorf("attunectl's tables survived down")
	}
	if got := columns()["worker"]; got != before["worker"] {
		t.Errorf("worker has %d columns after down, want Attune's %d", got, before["worker"])
	}
}

// On a fresh database the migrations create the tables and down removes
// every one of them; up again works.
func TestMigrationsDownAndUp(t *testing.T) {
	d := dbtest.New(t)
	ctx := ctxT(t)
	db, err := database.Open(ctx, database.Options{URL: d.URL, Schema: d.Schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.DownTo(ctx, 4); err != nil {
		t.Fatalf("down: %v", err)
	}
	var left int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'attune' AND tablename IN
		('sensor', 'trigger', 'event', 'sensor_workload', 'sensor_workload_assignment', 'sensor_ownership', 'sensor_workload_state', 'worker_drain')`).Scan(&left)
	if left != 0 {
		t.Errorf("%d phase-2 tables left after down", left)
	}
	var cols int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'attune' AND table_name = 'worker' AND column_name LIKE 'cordon%'`).Scan(&cols)
	if cols != 0 {
		t.Errorf("%d cordon columns left after down", cols)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
