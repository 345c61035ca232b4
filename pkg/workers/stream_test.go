package workers_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// handle is pool as the packages take it, with the schema learned once.
func handle(t testing.TB, pool *pgxpool.Pool) *database.DB {
	t.Helper()
	db := &database.DB{Pool: pool, Schema: dbtest.Schema}
	if err := db.Introspect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// collect streams opts and returns the rows.
func collect(t testing.TB, pool *pgxpool.Pool, opts workers.ListOptions, so workers.StreamOptions) ([]workers.Row, workers.StreamResult) {
	t.Helper()
	var rows []workers.Row
	res, err := workers.Stream(context.Background(), handle(t, pool), opts, so, func(r workers.Row) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Stream(%+v, %+v): %v", opts, so, err)
	}
	if res.Rows != int64(len(rows)) {
		t.Fatalf("StreamResult.Rows = %d, delivered %d", res.Rows, len(rows))
	}
	return rows, res
}

// sameWorker compares a streamed worker with List's. Silence is measured
// against each statement's own now(), so it is compared through the
// heartbeat instead.
func sameWorker(t testing.TB, l workers.Listing, got workers.Row, want workers.Worker) {
	t.Helper()
	sameWorkerButGrace(t, l, got, want)
	if got.Grace != l.GraceOf(want) {
		t.Errorf("%s: grace %v, List's %v", want.Name, got.Grace, l.GraceOf(want))
	}
}

// sameWorkerButGrace is sameWorker without the grace, for workers whose
// heartbeat_grace column was written by hand (List derives the grace from
// capabilities, as the trigger that keeps the column does).
func sameWorkerButGrace(t testing.TB, l workers.Listing, got workers.Row, want workers.Worker) {
	t.Helper()
	g := got.Worker
	if got.Late() != l.Late(want) {
		t.Errorf("%s: late %v, List's %v", want.Name, got.Late(), l.Late(want))
	}
	if (g.LastHeartbeat == nil) != (want.LastHeartbeat == nil) {
		t.Fatalf("%s: last heartbeat %v, List %v", want.Name, g.LastHeartbeat, want.LastHeartbeat)
	}
	if g.LastHeartbeat != nil {
		if d := g.Silence - got.At.Sub(*g.LastHeartbeat); d.Abs() > time.Millisecond {
			t.Errorf("%s: silence %v, but At - last heartbeat is %v", want.Name, g.Silence, got.At.Sub(*g.LastHeartbeat))
		}
	}
	g.Silence, want.Silence = 0, 0
	if (g.Port == nil) != (want.Port == nil) || g.Port != nil && *g.Port != *want.Port {
		t.Errorf("%s: port %v, List's %v", want.Name, g.Port, want.Port)
	}
	g.Port, want.Port = nil, nil
	if fmt.Sprintf("%#v", g) != fmt.Sprintf("%#v", want) {
		t.Errorf("streamed worker differs from List's:\n stream %#v\n   list %#v", g, want)
	}
	if inst, _ := want.Meta["instance_id"].(string); got.InstanceID != inst {
		t.Errorf("%s: instance %q, want %q", want.Name, got.InstanceID, inst)
	}
}

// compareWithList streams every option set in batches of batch rows and
// checks that the rows, their order and their derived state are List's.
func compareWithList(t *testing.T, db *dbtest.DB, batch int, cases []workers.ListOptions) {
	t.Helper()
	for _, opts := range cases {
		l, err := workers.List(context.Background(), db.Handle(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		rows, res := collect(t, db.Pool, opts, workers.StreamOptions{Fields: workers.FieldsAll, BatchSize: batch})
		if len(rows) != len(l.Workers) {
			t.Fatalf("%+v: streamed %d workers, List %d", opts, len(rows), len(l.Workers))
		}
		for i := range rows {
			if rows[i].Name != l.Workers[i].Name {
				t.Fatalf("%+v: row %d is %s, List's is %s", opts, i, rows[i].Name, l.Workers[i].Name)
			}
			sameWorker(t, l, rows[i], l.Workers[i])
		}
		if wantBatches := (len(rows) + batch - 1) / batch; res.Batches != wantBatches {
			t.Errorf("%+v: %d batches for %d rows of %d, want %d", opts, res.Batches, len(rows), batch, wantBatches)
		}
		if time.Since(res.At).Abs() > time.Minute {
			t.Errorf("At = %v, want the database's now", res.At)
		}
	}
}

var streamCases = []workers.ListOptions{
	{},
	{SortBy: workers.SortByHeartbeat},
	{StaleOnly: true},
	{StaleOnly: true, OlderThan: 2 * time.Minute, SortBy: workers.SortByHeartbeat},
	{Status: workers.StatusActive},
	{Status: workers.StatusInactive},
	{Selector: workers.Selector{Roles: []string{workers.RoleSensor}, Runtime: "python"}},
	{Selector: workers.Selector{Host: "h1"}},
	{Selector: workers.Selector{Names: []string{"sensor-live", "hybrid-err", "nobody"}}},
}

func TestStreamEqualsList(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	insert(t, db,
		row{name: "odd-caps", hbAgo: "1 second", caps: `{"runtimes": "python", "heartbeat_interval": "60"}`, meta: `{"instance_id": 7}`},
		row{name: "array-caps", hbAgo: "1 second", caps: `["python"]`, meta: `[1]`},
		row{name: "null-status", status: "null", hbAgo: "1 second"},
	)
	for _, batch := range []int{1, 2, 1000} {
		compareWithList(t, db, batch, streamCases)
	}
}

// TestStreamEqualsListBig compares 20,000 workers in batches: heartbeats
// are either fresh or hours old, so no worker changes state between List
// and Stream on a slow machine.
func TestStreamEqualsListBig(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat)
		SELECT 'w-' || md5(i::text), CASE WHEN i % 10 = 4 THEN 'action' ELSE 'sensor' END::worker_role_enum, 'local',
		       CASE WHEN i % 50 = 7 THEN 'inactive' ELSE 'active' END::worker_status_enum, 'host-' || (i % 100),
		       jsonb_build_object('runtimes', CASE i % 3 WHEN 0 THEN '["python", "shell"]'::jsonb ELSE '["shell"]'::jsonb END,
		                          'heartbeat_interval', 30 + i % 2 * 30),
		       jsonb_build_object('instance_id', 'i-' || i),
		       CASE WHEN i % 100 = 0 THEN NULL WHEN i % 37 = 0 THEN now() - interval '3 hours' - i * interval '1 second'
		            ELSE now() - (i % 5) * interval '1 second' + interval '10 minutes' END
		FROM generate_series(1, 20000) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	compareWithList(t, db, 997, []workers.ListOptions{
		{}, {SortBy: workers.SortByHeartbeat}, {StaleOnly: true}, {Selector: workers.Selector{Runtime: "python"}},
	})
}

func TestStreamFields(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	l, err := workers.List(context.Background(), db.Handle(t), workers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	rows, _ := collect(t, db.Pool, workers.ListOptions{}, workers.StreamOptions{Fields: workers.FieldsName})
	for i, r := range rows {
		want := workers.Row{At: r.At}
		want.Name = l.Workers[i].Name
		if fmt.Sprintf("%#v", r) != fmt.Sprintf("%#v", want) {
			t.Errorf("-o name row carries more than the name: %#v", r)
		}
	}

	rows, _ = collect(t, db.Pool, workers.ListOptions{}, workers.StreamOptions{Fields: workers.FieldsTable})
	for i, r := range rows {
		w := l.Workers[i]
		if r.State != w.State || r.Host != w.Host || strings.Join(r.Capabilities.Runtimes, ",") != strings.Join(w.Capabilities.Runtimes, ",") ||
			r.Capabilities.HeartbeatInterval != w.Capabilities.HeartbeatInterval || r.Grace != l.GraceOf(w) || r.Late() != l.Late(w) {
			t.Errorf("table row %s differs from List's: %+v", w.Name, r)
		}
		if r.Meta != nil || r.Capabilities.RuntimeVersions != nil || r.Capabilities.Extra != nil || r.InstanceID != "" ||
			r.ID != 0 || r.Type != "" || r.Status != "" || r.Port != nil || !r.Created.IsZero() {
			t.Errorf("table row %s decoded more than the table shows: %+v", w.Name, r)
		}
	}

	// Without colour the table does not read the heartbeat interval.
	rows, _ = collect(t, db.Pool, workers.ListOptions{}, workers.StreamOptions{Fields: workers.FieldsTable &^ workers.FieldLate})
	intervals := 0
	for i, r := range rows {
		w := l.Workers[i]
		if w.Capabilities.HeartbeatInterval != 0 {
			intervals++
		}
		if r.Capabilities.HeartbeatInterval != 0 || strings.Join(r.Capabilities.Runtimes, ",") != strings.Join(w.Capabilities.Runtimes, ",") || r.State != w.State {
			t.Errorf("table row %s without FieldLate: interval %v, runtimes %v, state %s", w.Name, r.Capabilities.HeartbeatInterval, r.Capabilities.Runtimes, r.State)
		}
	}
	if intervals == 0 {
		t.Error("no worker of the fleet has a heartbeat interval: the check above proves nothing")
	}
}

func TestStreamConsumerErrorStops(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	boom := errors.New("broken pipe")
	n := 0
	_, err := workers.Stream(context.Background(), db.Handle(t), workers.ListOptions{}, workers.StreamOptions{BatchSize: 2}, func(workers.Row) error {
		n++
		if n == 3 {
			return boom
		}
		return nil
	})
	if err != boom || n != 3 {
		t.Fatalf("Stream returned %v after %d rows, want the consumer's error after 3", err, n)
	}
	var got []string
	for r, err := range workers.Rows(context.Background(), db.Handle(t), workers.ListOptions{}, workers.StreamOptions{BatchSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, r.Name); len(got) == 4 {
			break
		}
	}
	if len(got) != 4 {
		t.Fatalf("iterator gave %v", got)
	}
	// No transaction or cursor is left behind on the pool's connections.
	var open int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil || open != 0 {
		t.Fatalf("%d sessions idle in a transaction after the streams ended (%v)", open, err)
	}
}

// poolWithTimeout connects to db with a statement timeout, as attunectl's
// connections have one.
func poolWithTimeout(t *testing.T, db *dbtest.DB, timeout time.Duration) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = db.Schema + ", public"
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(timeout.Milliseconds())
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestStreamSlowConsumerIsNotATimeout: the statement timeout bounds the
// server's work for one batch, never the time the consumer takes.
func TestStreamSlowConsumerIsNotATimeout(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	pool := poolWithTimeout(t, db, 200*time.Millisecond)
	n := 0
	_, err := workers.Stream(context.Background(), handle(t, pool), workers.ListOptions{}, workers.StreamOptions{Fields: workers.FieldsAll, BatchSize: 2}, func(workers.Row) error {
		if n++; n%3 == 1 {
			time.Sleep(300 * time.Millisecond) // a pager waiting for a key
		}
		return nil
	})
	if err != nil || n != len(fleet) {
		t.Fatalf("slow consumer: %d rows, %v", n, err)
	}
}

// bigFleet inserts n workers whose rows are wide enough (a 2 KB meta) that
// a listing of them fills the connection's buffers many times over: the
// server then waits on the client whenever the client stops reading.
func bigFleet(t *testing.T, db *dbtest.DB, n int) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `
		INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat)
		SELECT 'w-' || lpad(i::text, 6, '0'), 'sensor', 'local', 'active', 'host-' || (i % 100),
		       '{"runtimes": ["python", "shell"], "heartbeat_interval": 30}',
		       jsonb_build_object('instance_id', 'i-' || i, 'pad', repeat('x', 2000)), now()
		FROM generate_series(1, $1::int) AS i`, n); err != nil {
		t.Fatal(err)
	}
}

// TestStreamSlowConsumerBlocksNoTimeout: with far more rows than the
// connection buffers hold, a consumer that stops for longer than the
// statement timeout leaves the server waiting to send (the reader holds
// two batches and reads no more), and that wait is not a timeout: every
// row arrives.
func TestStreamSlowConsumerBlocksNoTimeout(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	const n = 20_000 // about 40 MB of meta
	bigFleet(t, db, n)
	pool := poolWithTimeout(t, db, 300*time.Millisecond)
	got := 0
	res, err := workers.Stream(context.Background(), handle(t, pool), workers.ListOptions{}, workers.StreamOptions{Fields: workers.FieldsAll, BatchSize: 500}, func(workers.Row) error {
		if got++; got == 10 || got == n/2 {
			time.Sleep(time.Second) // a pager waiting for a key
		}
		return nil
	})
	if err != nil || got != n || res.Rows != n {
		t.Fatalf("slow consumer: %d rows delivered (result %d), %v; want %d and no error", got, res.Rows, err, n)
	}
}

// TestStreamEarlyStopEndsTheStatement: a consumer that stops after one
// row (| head -1) gets its error back at once, the server's statement is
// cancelled rather than sent to the end, and no session is left running it.
func TestStreamEarlyStopEndsTheStatement(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bigFleet(t, db, 20_000)
	boom := errors.New("broken pipe")
	start := time.Now()
	_, err := workers.Stream(context.Background(), db.Handle(t), workers.ListOptions{}, workers.StreamOptions{Fields: workers.FieldsAll}, func(workers.Row) error {
		return boom
	})
	if err != boom {
		t.Fatalf("Stream returned %v, want the consumer's error", err)
	}
	t.Logf("stopped after one row in %s", time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	for {
		var running int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still running a statement 5 s after the stream stopped", running)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStreamTimeoutSaysLocked: a statement timeout while the table is
// locked names the session that holds the lock.
func TestStreamTimeoutSaysLocked(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE worker IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	pool := poolWithTimeout(t, db, 300*time.Millisecond)
	_, err = workers.Stream(ctx, handle(t, pool), workers.ListOptions{}, workers.StreamOptions{}, func(workers.Row) error { return nil })
	var se *workers.StreamError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "the worker table is locked by pid") || !strings.Contains(err.Error(), "AccessExclusiveLock") {
		t.Fatalf("want a StreamError naming the lock holder, got %v", err)
	}
}

// TestGraceColumn: the trigger keeps heartbeat_grace equal to the grace
// Capabilities.Grace derives, for every writer, and a row the backfill has
// not reached (NULL) is judged the same way.
func TestGraceColumn(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	caps := []string{``, `{}`, `{"heartbeat_interval": 10}`, `{"heartbeat_interval": 0.5}`, `{"heartbeat_interval": -3}`,
		`{"heartbeat_interval": "60"}`, `["x"]`, `"s"`, `{"heartbeat_interval": null}`}
	for i, c := range caps {
		insert(t, db, row{name: fmt.Sprintf("w%d", i), hbAgo: "20 seconds", caps: c})
	}
	check := func(when string) {
		t.Helper()
		l, err := workers.List(ctx, db.Handle(t), workers.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range l.Workers {
			var secs *float64
			if err := db.Pool.QueryRow(ctx, "SELECT extract(epoch FROM heartbeat_grace)::float8 FROM worker WHERE name = $1", w.Name).Scan(&secs); err != nil {
				t.Fatal(err)
			}
			if when != "null" && (secs == nil || time.Duration(*secs*float64(time.Second)) != w.Capabilities.Grace()) {
				t.Errorf("%s: %s: heartbeat_grace %v, want %v", when, w.Name, secs, w.Capabilities.Grace())
			}
			wantStale := 20*time.Second > w.Capabilities.Grace()
			if (w.State == workers.StateStale) != wantStale {
				t.Errorf("%s: %s: state %s with grace %v", when, w.Name, w.State, w.Capabilities.Grace())
			}
		}
	}
	check("insert")
	if _, err := db.Pool.Exec(ctx, `UPDATE worker SET capabilities = capabilities || '{"heartbeat_interval": 5}' WHERE jsonb_typeof(capabilities) = 'object'`); err != nil {
		t.Fatal(err)
	}
	check("update")
	// A heartbeat does not fire the trigger: the column is left alone.
	if _, err := db.Pool.Exec(ctx, `UPDATE worker SET heartbeat_grace = NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE worker SET last_heartbeat = now() - interval '20 seconds', status = 'active'`); err != nil {
		t.Fatal(err)
	}
	check("null")
}

// TestRuntimeIndex: --runtime can use the GIN index on the runtimes.
func TestRuntimeIndex(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	insert(t, db, fleet...)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	q, args := workers.ListQuery(workers.ListOptions{Selector: workers.Selector{Runtime: "python"}})
	rows, err := tx.Query(ctx, "EXPLAIN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "idx_worker_capabilities_runtimes") {
		t.Fatalf("--runtime does not use the GIN index:\n%s", strings.Join(plan, "\n"))
	}
}

// BenchmarkStreamMemory streams 20,000 and 200,000 workers with every
// field and reports the peak heap: it must not grow with the row count
// (List's does). go test -run '^$' -bench StreamMemory ./pkg/workers
func BenchmarkStreamMemory(b *testing.B) {
	for _, n := range []int{20_000, 200_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			db := benchFleet(b, n)
			dbh := db.Handle(b)
			for _, mode := range []string{"stream", "list"} {
				b.Run(mode, func(b *testing.B) {
					var peak atomic.Uint64
					stop := make(chan struct{})
					var wg sync.WaitGroup
					wg.Add(1)
					go func() {
						defer wg.Done()
						var ms runtime.MemStats
						for {
							runtime.ReadMemStats(&ms)
							if ms.HeapAlloc > peak.Load() {
								peak.Store(ms.HeapAlloc)
							}
							select {
							case <-stop:
								return
							case <-time.After(5 * time.Millisecond):
							}
						}
					}()
					runtime.GC()
					for b.Loop() {
						var got int64
						if mode == "list" {
							l, err := workers.List(context.Background(), dbh, workers.ListOptions{})
							if err != nil {
								b.Fatal(err)
							}
							got = int64(len(l.Workers))
						} else {
							res, err := workers.Stream(context.Background(), dbh, workers.ListOptions{}, workers.StreamOptions{Fields: workers.FieldsAll},
								func(workers.Row) error { return nil })
							if err != nil {
								b.Fatal(err)
							}
							got = res.Rows
						}
						if got != int64(n) {
							b.Fatalf("%d rows, want %d", got, n)
						}
					}
					close(stop)
					wg.Wait()
					b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
				})
			}
		})
	}
}
