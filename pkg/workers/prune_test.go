package workers_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// TestMain (dbtest.Main) is declared once for this test binary, in
// registration_test.go.

// states returns name → stored status of every worker.
func states(t testing.TB, db *dbtest.DB) map[string]string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT name, coalesce(status::text, '') FROM worker`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, s string
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		out[n] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t testing.TB, db *dbtest.DB, where string) int64 {
	t.Helper()
	var n int64
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM worker WHERE "+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var sensors = workers.Selector{Roles: []string{workers.RoleSensor}}

func TestPruneMarksStaleSensorsOnly(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	ctx := context.Background()
	opts := workers.PruneOptions{Selector: sensors}

	preview, err := workers.PrunePreview(ctx, db.Handle(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(preview), []string{"sensor-never", "sensor-stale"}; !slices.Equal(got, want) {
		t.Fatalf("preview %v, want %v", got, want)
	}
	if n, err := workers.PruneCount(ctx, db.Handle(t), opts); err != nil || n != 2 {
		t.Fatalf("count = %d, %v; want 2", n, err)
	}
	if got := states(t, db); got["sensor-stale"] != "active" {
		t.Fatalf("the preview changed something: %v", got)
	}

	var batches []workers.PruneBatch
	opts.OnBatch = func(b workers.PruneBatch) { batches = append(batches, b) }
	res, err := workers.Prune(ctx, db.Handle(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed != 2 || res.Batches != 1 || len(batches) != 1 || len(batches[0].Workers) != 2 {
		t.Fatalf("result %+v, batches %+v; want 2 changed in 1 batch", res, batches)
	}
	want := map[string]string{
		"sensor-live": "active", "sensor-late": "active", "sensor-stale": "inactive", "sensor-never": "inactive",
		"sensor-slow": "active", "sensor-off": "inactive",
		// Asked for sensors: the stale action worker and the hybrid are not touched.
		"action-busy": "busy", "action-stale": "active", "hybrid-err": "error",
	}
	if got := states(t, db); !maps.Equal(got, want) {
		t.Errorf("after prune: %v\nwant %v", got, want)
	}
	if n := count(t, db, "name = 'sensor-stale' AND updated > now() - interval '1 minute'"); n != 1 {
		t.Errorf("updated was not bumped on the marked worker")
	}

	// A second run finds nothing.
	res, err = workers.Prune(ctx, db.Handle(t), opts)
	if err != nil || res.Changed != 0 || res.Batches != 0 {
		t.Errorf("second prune = %+v, %v; want nothing changed", res, err)
	}
}

func TestPruneScopes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		sel  workers.Selector
		want []string // marked inactive
	}{
		{"every role", workers.Selector{}, []string{"action-stale", "sensor-never", "sensor-stale"}},
		{"action", workers.Selector{Roles: []string{"action"}}, []string{"action-stale"}},
		{"runtime python", workers.Selector{Runtime: "python"}, []string{"sensor-stale"}},
		{"host h2 sensors", workers.Selector{Host: "h2", Roles: []string{"sensor"}}, []string{"sensor-never", "sensor-stale"}},
		{"host h1", workers.Selector{Host: "h1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			insert(t, db, fleet...)
			var got []string
			_, err := workers.Prune(context.Background(), db.Handle(t), workers.PruneOptions{Selector: tc.sel, OnBatch: func(b workers.PruneBatch) {
				for _, w := range b.Workers {
					got = append(got, w.Name)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("marked %v, want %v", got, tc.want)
			}
		})
	}
}

// The race the design cares about: a worker listed as stale by the dry run
// heartbeats before the prune runs. The prune's own statement evaluates the
// staleness at execution time, so it leaves the worker alone.
func TestPruneRaceHeartbeatAfterDryRun(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	insert(t, db,
		row{name: "comes-back", hbAgo: "10 minutes"},
		row{name: "stays-dead", hbAgo: "10 minutes"},
	)
	for _, o := range []workers.PruneOptions{{Selector: sensors}, {Selector: sensors, Delete: true, OlderThan: time.Minute}} {
		preview, err := workers.PrunePreview(ctx, db.Handle(t), o)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(preview); !slices.Equal(got, []string{"comes-back", "stays-dead"}) {
			t.Fatalf("%s: dry run lists %v, want both", o.Action(), got)
		}
		// The heartbeat, as the sensor worker sends it.
		if _, err := db.Pool.Exec(ctx, `UPDATE worker SET last_heartbeat = now(), status = 'active' WHERE name = 'comes-back'`); err != nil {
			t.Fatal(err)
		}
		res, err := workers.Prune(ctx, db.Handle(t), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed != 1 {
			t.Errorf("%s: changed %d, want 1 (stays-dead only)", o.Action(), res.Changed)
		}
		if got := states(t, db); got["comes-back"] != "active" {
			t.Errorf("%s: the worker that heartbeat after the dry run was touched: %v", o.Action(), got)
		}
		// Make comes-back stale again for the delete round.
		if _, err := db.Pool.Exec(ctx, `UPDATE worker SET last_heartbeat = now() - interval '10 minutes' WHERE name = 'comes-back'`); err != nil {
			t.Fatal(err)
		}
	}
	if got := states(t, db); !maps.Equal(got, map[string]string{"comes-back": "active"}) {
		t.Errorf("after mark and delete: %v, want only comes-back left", got)
	}
}

// A worker whose heartbeat is in flight (its row is locked by an open
// transaction) is skipped, not waited for: the prune completes at once and
// the worker keeps the heartbeat it commits.
func TestPruneSkipsRowsLockedByHeartbeat(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	insert(t, db,
		row{name: "heartbeating", hbAgo: "10 minutes"},
		row{name: "dead", hbAgo: "10 minutes"},
	)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE worker SET last_heartbeat = now() WHERE name = 'heartbeating'`); err != nil {
		t.Fatal(err)
	}

	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	begin := time.Now()
	res, err := workers.Prune(pctx, db.Handle(t), workers.PruneOptions{Selector: sensors})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("prune waited %v for the locked row", took)
	}
	if res.Changed != 1 {
		t.Errorf("changed %d, want 1", res.Changed)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := states(t, db); !maps.Equal(got, map[string]string{"heartbeating": "active", "dead": "inactive"}) {
		t.Errorf("states %v", got)
	}
	l, err := workers.List(ctx, db.Handle(t), workers.ListOptions{Status: "active"})
	if err != nil || !slices.Equal(names(l), []string{"heartbeating"}) {
		t.Errorf("live workers %v, %v; want heartbeating", names(l), err)
	}
}

// 20,000 stale sensor workers among live ones and stale action workers:
// the prune works in batches of 5,000 and changes exactly the stale sensors,
// first marking them, then deleting them.
func TestPruneBatches(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, last_heartbeat)
		SELECT 'w-' || i,
		       CASE WHEN i % 100 = 0 THEN 'action' ELSE 'sensor' END::worker_role_enum,
		       'local', 'active', 'host-' || (i % 50),
		       '{"runtimes": ["shell"], "heartbeat_interval": 30}',
		       CASE WHEN i % 10 = 0 THEN now() ELSE now() - interval '40 days' END
		FROM generate_series(1, 22300) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	// i % 10 != 0 and i % 100 != 0: stale sensors.
	stale := count(t, db, "worker_role = 'sensor' AND last_heartbeat < now() - interval '1 day'")
	if stale != 20070 {
		t.Fatalf("fixture: %d stale sensors", stale)
	}

	for _, o := range []workers.PruneOptions{
		{Selector: sensors, BatchSize: 5000},
		{Selector: sensors, BatchSize: 5000, Delete: true, OlderThan: 720 * time.Hour},
	} {
		var seen []workers.PruneBatch
		o.OnBatch = func(b workers.PruneBatch) { seen = append(seen, b) }
		begin := time.Now()
		res, err := workers.Prune(ctx, db.Handle(t), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d rows in %d batches, %v", o.Action(), res.Changed, res.Batches, time.Since(begin).Round(time.Millisecond))
		// 22,300 workers examined 5,000 at a time: 5 statements, each
		// changing the stale sensors among its 5,000.
		if res.Changed != stale || res.Batches != 5 || res.Statements != 5 || res.Scanned != 22300 || len(seen) != 5 {
			t.Errorf("%s: %+v in %d callbacks, want %d rows in 5 batches", o.Action(), res, len(seen), stale)
		}
		var sum int64
		for i, b := range seen {
			sum += int64(len(b.Workers))
			if b.Number != i+1 || len(b.Workers) > 5000 || len(b.Workers) < 2000 || b.Changed != sum {
				t.Errorf("%s: batch %d = number %d, %d workers, %d so far", o.Action(), i, b.Number, len(b.Workers), b.Changed)
			}
		}
	}
	if n := count(t, db, "true"); n != 22300-stale {
		t.Errorf("%d workers left, want %d", n, 22300-stale)
	}
	if n := count(t, db, "worker_role = 'action' AND status = 'active'"); n != 223 {
		t.Errorf("%d stale action workers left active, want all 223", n)
	}
	if n := count(t, db, "worker_role = 'sensor' AND status = 'active'"); n != 22300-223-stale {
		t.Errorf("%d live sensors left, want %d", n, 22300-223-stale)
	}
}

func TestPruneDelete(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	insert(t, db,
		row{name: "off-old", status: "inactive", hbAgo: "40 days"},
		row{name: "off-recent", status: "inactive", hbAgo: "2 days"},
		row{name: "stale-old", hbAgo: "40 days"},
		row{name: "stale-recent", hbAgo: "1 hour"},
		row{name: "never-old", age: "40 days"},
		row{name: "never-recent", age: "1 hour"},
		row{name: "live", hbAgo: "1 second"},
		row{name: "busy-old", status: "busy", hbAgo: "40 days"},
		row{name: "error-old", status: "error", hbAgo: "40 days"},
		row{name: "action-off-old", role: "action", status: "inactive", hbAgo: "40 days"},
		row{name: "hybrid-off-old", role: "hybrid", status: "inactive", hbAgo: "40 days"},
	)
	o := workers.PruneOptions{Selector: sensors, Delete: true, OlderThan: 720 * time.Hour}
	preview, err := workers.PrunePreview(ctx, db.Handle(t), o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"never-old", "off-old", "stale-old"}
	if got := names(preview); !slices.Equal(got, want) {
		t.Errorf("preview %v, want %v", got, want)
	}
	var got []string
	o.OnBatch = func(b workers.PruneBatch) {
		for _, w := range b.Workers {
			got = append(got, w.Name)
		}
	}
	if _, err := workers.Prune(ctx, db.Handle(t), o); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("deleted %v, want %v", got, want)
	}
	if n := count(t, db, "true"); n != 8 {
		t.Errorf("%d left, want 8", n)
	}
}

func TestPruneValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts workers.PruneOptions
		want string
	}{
		{workers.PruneOptions{Delete: true}, "pass --older-than"},
		{workers.PruneOptions{BatchSize: -1}, "batch size -1"},
		{workers.PruneOptions{BatchSize: workers.MaxPruneBatchSize + 1}, "must be between 1 and 100000"},
		{workers.PruneOptions{OlderThan: -time.Second}, "must be positive"},
	} {
		err := tc.opts.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
		// Prune refuses before touching the database (a nil pool would panic).
		if _, err := workers.Prune(context.Background(), nil, tc.opts); err == nil {
			t.Errorf("Prune(%+v) accepted invalid options", tc.opts)
		}
	}
}

// Cancelling stops between batches and reports what was done.
func TestPruneCancelled(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO worker (name, worker_role, worker_type, status, last_heartbeat)
		SELECT 'w-' || i, 'sensor', 'local', 'active', now() - interval '1 day' FROM generate_series(1, 300) AS i`); err != nil {
		t.Fatal(err)
	}
	res, err := workers.Prune(ctx, db.Handle(t), workers.PruneOptions{BatchSize: 100, OnBatch: func(b workers.PruneBatch) {
		if b.Number == 2 {
			cancel()
		}
	}})
	if err != context.Canceled || res.Changed != 200 || res.Batches != 2 || res.Statements != 2 {
		t.Errorf("Prune = %+v, %v; want 200 in 2 batches, context.Canceled", res, err)
	}
	if n := count(t, db, "status = 'active'"); n != 100 {
		t.Errorf("%d still active, want 100", n)
	}
}

// BenchmarkPruneMark measures a prune of 100 stale workers among
// 10,000: the statements examine every worker once, in batches of 5,000.
func BenchmarkPruneMark(b *testing.B) {
	db := benchFleet(b, 10_000)
	dbh := db.Handle(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		if _, err := db.Pool.Exec(ctx, "UPDATE worker SET status = 'active' WHERE status = 'inactive'"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := workers.Prune(ctx, dbh, workers.PruneOptions{})
		if err != nil || res.Changed != 100 || res.Statements != 3 {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}
