package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/config"
	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/sensors"
	"github.com/attune-automation/attunectl/pkg/testsupport"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// goldenNow is the fixed clock of the golden files.
var goldenNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// goldenFleet covers every derived state, a late worker, a worker that never
// heartbeat, versions, instance ids and a worker without capabilities.
// Inserted in this order, the ids are 1 to 8.
const goldenFleet = `
INSERT INTO worker (name, worker_role, worker_type, status, host, port, capabilities, meta, last_heartbeat, created, updated) VALUES
('sensor-web-01', 'sensor', 'local', 'active', 'web-01', NULL,
 '{"runtimes": ["built-in sensor", "native", "python", "shell"], "max_concurrent_sensors": 10, "sensor_version": "0.3.0", "runtime_versions": {"python": "3.11.7"}, "heartbeat_interval": 30}',
 '{"instance_id": "6f1c2a9e"}', now() - interval '12 seconds', now() - interval '3 days', now() - interval '3 days'),
('sensor-web-02', 'sensor', 'local', 'active', 'web-02', NULL,
 '{"runtimes": ["built-in sensor", "node.js", "shell"], "runtime_versions": {"node.js": "v20.11.1", "shell": "5.2.15"}}',
 '{"instance_id": "0b7d44c1"}', now() - interval '47 seconds', now() - interval '5 hours', now() - interval '5 hours'),
('sensor-batch-01', 'sensor', 'local', 'active', 'batch-01', NULL,
 '{"runtimes": ["python"], "heartbeat_interval": 120}', NULL,
 now() - interval '4 minutes', now() - interval '2 days', now() - interval '2 days'),
('sensor-old-01', 'sensor', 'local', 'active', 'old-01', NULL,
 '{"runtimes": ["shell"]}', '{"instance_id": "a3e5f0d2"}',
 now() - interval '10 minutes 30 seconds', now() - interval '40 days', now() - interval '40 days'),
('sensor-new-01', 'sensor', 'local', 'active', 'new-01', NULL, NULL, NULL,
 NULL, now() - interval '2 minutes', now() - interval '2 minutes'),
('sensor-gone-01', 'sensor', 'local', 'inactive', 'gone-01', NULL,
 '{"runtimes": ["python"]}', NULL,
 now() - interval '2 days 3 hours', now() - interval '30 days', now() - interval '2 days'),
('action-exec-01', 'action', 'remote', 'busy', 'exec-01', 8443, NULL, NULL,
 now() - interval '3 seconds', now() - interval '10 days', now() - interval '1 hour'),
('hybrid-edge-01', 'hybrid', 'container', 'error', 'edge-01', NULL,
 '{"runtimes": ["python"]}', NULL,
 now() - interval '2 minutes', now() - interval '1 day', now() - interval '1 day')`

func fleetDB(t *testing.T) *dbtest.DB {
	t.Helper()
	db, _ := fleetDBAt(t)
	return db
}

// fleetDBAt inserts goldenFleet and returns the database's now() of the
// insert, from which every timestamp of the fleet was computed.
func fleetDBAt(t *testing.T) (*dbtest.DB, time.Time) {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	var at time.Time
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, goldenFleet); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT now()").Scan(&at) // the transaction's start, as in the insert
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, at
}

// rebase moves a listing read from the database onto the golden clock:
// every time shifts by goldenNow - inserted (the fixture's timestamps were
// computed from inserted, so they land on whole seconds before goldenNow),
// and silences are recomputed against goldenNow. The output is then the
// same on every run, however long the test waited between the insert and
// the query, while the states are the ones the database derived.
func rebase(l workers.Listing, inserted time.Time) workers.Listing {
	shift := goldenNow.Sub(inserted)
	move := func(t time.Time) time.Time { return t.Add(shift).UTC() }
	out := l
	out.At = goldenNow
	out.Workers = slices.Clone(l.Workers)
	for i := range out.Workers {
		w := &out.Workers[i]
		w.Created, w.Updated = move(w.Created), move(w.Updated)
		if w.LastHeartbeat != nil {
			hb := move(*w.LastHeartbeat)
			w.LastHeartbeat = &hb
			w.Silence = goldenNow.Sub(hb)
		}
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testsupport.Golden(t, filepath.Join("..", "..", "testdata", "golden", "worker", name), got, *update, "go test ./pkg/cli -run TestWorkerGolden -update")
}

// fleetPlacement cordons two workers of the fleet (one with a reason and
// who, cordoned 20 minutes before the fleet's insert) and gives
// sensor-web-01 two sensors under live leases, then reads what worker list
// reads, moved onto the golden clock like rebase does.
func fleetPlacement(t *testing.T, db *dbtest.DB, inserted time.Time) map[int64]placement.WorkerState {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`UPDATE worker SET cordoned = true, cordon_reason = 'disk failing', cordoned_by_name = 'alice',
			cordoned_at = $1::timestamptz - interval '20 minutes' WHERE name = 'sensor-old-01'`,
		`UPDATE worker SET cordoned = true, cordoned_at = $1::timestamptz - interval '1 hour' WHERE name = 'hybrid-edge-01'`,
	} {
		if _, err := db.Pool.Exec(ctx, q, inserted); err != nil {
			t.Fatal(err)
		}
	}
	var ss []sensors.Sensor
	for _, ref := range []string{"golden.one", "golden.two"} {
		ss = append(ss, sensors.Sensor{Ref: ref, Runtime: "core.sensor.shell", Entrypoint: "x.sh"})
	}
	if _, err := sensors.Add(ctx, db.Handle(t), ss, false); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE sensor_workload_assignment SET worker = (SELECT id FROM worker WHERE name = 'sensor-web-01'),
		worker_instance = gen_random_uuid(), generation = 1, lease_expires_at = clock_timestamp() + interval '10 minutes',
		assigned_at = now(), renewed_at = now()`); err != nil {
		t.Fatal(err)
	}
	pl, err := placement.WorkerStates(ctx, db.Handle(t))
	if err != nil {
		t.Fatal(err)
	}
	shift := goldenNow.Sub(inserted)
	for id, ps := range pl {
		if ps.At != nil {
			at := ps.At.Add(shift).UTC()
			ps.At = &at
			pl[id] = ps
		}
	}
	return pl
}

// TestWorkerGolden prints the real listings of a fixture database in every
// format, with colour off and on, on a fixed clock.
func TestWorkerGolden(t *testing.T) {
	t.Parallel()
	db, inserted := fleetDBAt(t)
	ctx := context.Background()
	list, err := workers.List(ctx, db.Handle(t), workers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := workers.Stale(ctx, db.Handle(t), workers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pl := fleetPlacement(t, db, inserted)
	for _, c := range []struct {
		cmd     string
		listing workerListing
		stale   bool
	}{{"list", workerListing{rebase(list, inserted), pl}, false}, {"stale", workerListing{rebase(stale, inserted), pl}, true}} {
		for _, f := range []output.Format{output.Table, output.Wide, output.JSON, output.YAML, output.Name} {
			for _, color := range []bool{false, true} {
				if color && f != output.Table && f != output.Wide {
					continue
				}
				name := c.cmd + "-" + string(f)
				if color {
					name += "-color"
				}
				t.Run(name, func(t *testing.T) {
					var buf bytes.Buffer
					if err := printWorkers(&buf, c.listing, f, output.Palette{On: color}, c.stale); err != nil {
						t.Fatal(err)
					}
					golden(t, name+".golden", buf.Bytes())
				})
			}
		}
	}
}

// TestWorkerGoldenStreamed prints the same listings as TestWorkerGolden the
// way worker list and worker stale do: from workers.Stream, each format
// reading only its fields (names only for -o name, no capabilities for the
// table), cordons and sensors joined into the stream's statement. The
// output must be byte for byte the goldens.
func TestWorkerGoldenStreamed(t *testing.T) {
	t.Parallel()
	db, inserted := fleetDBAt(t)
	ctx := context.Background()
	fleetPlacement(t, db, inserted)
	shift := goldenNow.Sub(inserted)
	move := func(t time.Time) time.Time { return t.Add(shift).UTC() }
	for _, c := range []struct {
		cmd   string
		stale bool
	}{{"list", false}, {"stale", true}} {
		for _, f := range []output.Format{output.Table, output.Wide, output.JSON, output.YAML, output.Name} {
			for _, color := range []bool{false, true} {
				if color && f != output.Table && f != output.Wide {
					continue
				}
				name := c.cmd + "-" + string(f)
				if color {
					name += "-color"
				}
				t.Run(name, func(t *testing.T) {
					var buf bytes.Buffer
					p := workerSpec(c.stale, true).NewPrinter(&buf, f, output.PrinterOptions{Palette: output.Palette{On: color}})
					_, err := workers.Stream(ctx, db.Handle(t), workers.ListOptions{StaleOnly: c.stale}, workers.StreamOptions{Fields: workerFields(f, true, output.Palette{On: color}), BatchSize: 3}, func(r workers.Row) error {
						r.At = goldenNow
						r.Created, r.Updated = move(r.Created), move(r.Updated)
						if r.LastHeartbeat != nil {
							hb := move(*r.LastHeartbeat)
							r.LastHeartbeat, r.Silence = &hb, goldenNow.Sub(hb)
						}
						if r.Placement.At != nil {
							at := move(*r.Placement.At)
							r.Placement.At = &at
						}
						return p.Write(r)
					})
					if err != nil {
						t.Fatal(err)
					}
					if err := p.Flush(); err != nil {
						t.Fatal(err)
					}
					want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", "worker", name+".golden"))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf.Bytes(), want) {
						t.Errorf("streamed output differs from %s.golden:\n%s\nwant:\n%s", name, buf.Bytes(), want)
					}
				})
			}
		}
	}
}

// testApp is an App with buffers for streams, the default configuration
// and the golden clock.
func testApp(stdin string) (*App, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	app := &App{In: strings.NewReader(stdin), Out: &out, Err: &errOut, Now: func() time.Time { return goldenNow }, Config: config.Default(), VerifyResultHook: stableVerifyResult}
	app.Log = slog.New(slog.NewTextHandler(&errOut, nil))
	return app, &out, &errOut
}

func listOpts(mut func(*workerListOptions)) workerListOptions {
	o := workerListOptions{SortBy: workers.SortByName, WatchInterval: DefaultWatchInterval, Format: output.Table}
	if mut != nil {
		mut(&o)
	}
	return o
}

func TestWorkerListRun(t *testing.T) {
	t.Parallel()
	db := fleetDB(t)
	ctx := context.Background()

	app, out, errOut := testApp("")
	err := runWorkerList(ctx, app, dbOf(db), listOpts(func(o *workerListOptions) {
		o.Selector.Roles = []string{"sensor"}
		o.Selector.Runtime = "Python"
		o.Status = "active"
		o.Format = output.Name
	}))
	if err != nil || out.String() != "sensor-batch-01\nsensor-web-01\n" || errOut.Len() != 0 {
		t.Errorf("the seed's query: %v\nstdout %q\nstderr %q", err, out, errOut)
	}

	app, out, errOut = testApp("")
	err = runWorkerList(ctx, app, dbOf(db), listOpts(func(o *workerListOptions) { o.Selector.Host = "nowhere" }))
	if err != nil || out.Len() != 0 || errOut.String() != "No workers found.\n" {
		t.Errorf("empty listing: %v\nstdout %q\nstderr %q", err, out, errOut)
	}

	app, out, _ = testApp("")
	err = runWorkerList(ctx, app, dbOf(db), listOpts(func(o *workerListOptions) { o.Format = output.JSON; o.Selector.Host = "nowhere" }))
	if err != nil || out.String() != "[]\n" {
		t.Errorf("empty json: %v, %q", err, out)
	}

	app, _, _ = testApp("")
	err = runWorkerList(ctx, app, dbOf(db), listOpts(func(o *workerListOptions) { o.Status = "activ" }))
	if ExitCode(err) != ExitUsage || err.Error() != `unknown worker status "activ": use one of active, stale, inactive, busy, error` {
		t.Errorf("--status activ: exit %d, %v", ExitCode(err), err)
	}
	err = runWorkerList(ctx, app, dbOf(db), listOpts(func(o *workerListOptions) { o.Selector.Roles = []string{"sensors"} }))
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), `unknown worker role "sensors"`) {
		t.Errorf("--role sensors: exit %d, %v", ExitCode(err), err)
	}
}

func TestWorkerStaleExitCode(t *testing.T) {
	t.Parallel()
	db := fleetDB(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		mut      func(*workerListOptions)
		code     int
		stdout   string
		stderrRe string
	}{
		{"stale exist", func(o *workerListOptions) { o.ExitCode = true; o.Format = output.Name }, ExitCondition, "sensor-new-01\nsensor-old-01\n", "^$"},
		{"without --exit-code", func(o *workerListOptions) { o.Format = output.Name }, ExitOK, "sensor-new-01\nsensor-old-01\n", "^$"},
		{"none stale", func(o *workerListOptions) { o.ExitCode = true; o.Selector.Roles = []string{"action"} }, ExitOK, "", "^No stale workers.\n$"},
		{"the seed's 5 minutes, sensors", func(o *workerListOptions) {
			o.ExitCode = true
			o.OlderThan = 5 * time.Minute
			o.Selector.Roles = []string{"sensor"}
			o.Format = output.Name
		}, ExitCondition, "sensor-new-01\nsensor-old-01\n", "^$"},
		{"grace override catches the late ones", func(o *workerListOptions) {
			o.OlderThan = 30 * time.Second
			o.Format = output.Name
		}, ExitOK, "sensor-batch-01\nsensor-new-01\nsensor-old-01\nsensor-web-02\n", "^$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, out, errOut := testApp("")
			o := listOpts(tc.mut)
			o.Stale = true
			err := runWorkerList(ctx, app, dbOf(db), o)
			if ExitCode(err) != tc.code || out.String() != tc.stdout || !regexp.MustCompile(tc.stderrRe).MatchString(errOut.String()) {
				t.Errorf("exit %d (%v), want %d\nstdout %q, want %q\nstderr %q", ExitCode(err), err, tc.code, out, tc.stdout, errOut)
			}
			if err != nil && tc.code == ExitCondition && !silent(err) {
				t.Errorf("the condition error prints something: %v", err)
			}
		})
	}
}

// A lock on the worker table makes the listing give up after
// database.statement_timeout, and the error says why, and who holds it.
func TestWorkerListStatementTimeout(t *testing.T) {
	t.Parallel()
	tdb := fleetDB(t)
	ctx := context.Background()
	db, err := database.Open(ctx, database.Options{URL: tdb.URL, Schema: tdb.Schema, StatementTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	testsupport.LockTable(t, tdb.Pool, "worker")

	app, _, _ := testApp("")
	app.Config.Database.StatementTimeout = config.Seconds(300 * time.Millisecond)
	begin := time.Now()
	for _, o := range []workerListOptions{listOpts(nil), listOpts(func(o *workerListOptions) { o.Stale = true })} {
		err = runWorkerList(ctx, app, db, o)
		want := regexp.MustCompile(`^listing (stale )?workers: timed out after 300ms: the worker table is locked or the server is overloaded ` +
			`\(locked exclusively by pid \d+: dbtest, user \w+, in a transaction for \d+(ms|s)\); retry later, find the blocking session in pg_stat_activity, or raise database.statement_timeout$`)
		if err == nil || !want.MatchString(err.Error()) || ExitCode(err) != ExitError {
			t.Errorf("exit %d: %v\nwant %s", ExitCode(err), err, want)
		}
	}
	pruneApp, _, _ := testApp("")
	pruneApp.Config.Database.StatementTimeout = config.Seconds(300 * time.Millisecond)
	err = runWorkerPrune(ctx, pruneApp, db, workerPruneOptions{Yes: true, BatchSize: 10, Format: output.Table})
	if err == nil || !strings.HasPrefix(err.Error(), "pruning workers: timed out after 300ms: the worker table is locked") {
		t.Errorf("prune: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}

// frameWriter collects --watch output and cancels the watch after n frames.
type frameWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	frames int
	n      int
	cancel context.CancelFunc
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frames++
	if w.frames == w.n {
		w.cancel()
	}
	return w.buf.Write(p)
}

func TestWorkerListWatch(t *testing.T) {
	t.Parallel()
	db := fleetDB(t)
	for _, tc := range []struct {
		name     string
		terminal bool
		format   output.Format
		want     string
	}{
		{"separator", false, output.Name, strings.Repeat("action-exec-01\n---\n", 2) + "action-exec-01\n"},
		{"json stream", false, output.JSON, strings.Repeat("[\n", 3)},
		{"terminal", true, output.Name, strings.Repeat("\x1b[H\x1b[2JEvery 50ms: attunectl worker list    2025-06-01 12:00:00\n\naction-exec-01\n", 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			app, _, errOut := testApp("")
			w := &frameWriter{n: 3, cancel: cancel}
			app.Out = w
			o := listOpts(func(o *workerListOptions) {
				o.Watch, o.WatchInterval, o.Format, o.Terminal = true, 50*time.Millisecond, tc.format, tc.terminal
				o.Selector.Roles = []string{"action"}
			})
			if err := runWorkerList(ctx, app, dbOf(db), o); err != nil {
				t.Fatalf("watch returned %v; want nil when interrupted", err)
			}
			if context.Cause(ctx) == context.DeadlineExceeded {
				t.Fatal("watch did not redraw three times")
			}
			got := w.buf.String()
			if tc.format == output.JSON {
				got = strings.Join(regexp.MustCompile(`(?m)^\[$\n`).FindAllString(got, -1), "")
			}
			if got != tc.want || errOut.Len() != 0 {
				t.Errorf("stdout %q\nwant %q\nstderr %q", w.buf.String(), tc.want, errOut)
			}
		})
	}
}

func TestWorkerPruneValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    workerPruneOptions
		want string // "" valid
	}{
		{"no terminal, no --yes", workerPruneOptions{}, "refusing to mark inactive workers without confirmation: stdin is not a terminal (pass --yes to prune, or --dry-run to see what would change)"},
		{"no terminal, delete", workerPruneOptions{Delete: true, OlderThan: time.Hour}, "refusing to delete workers without confirmation: stdin is not a terminal (pass --yes to prune, or --dry-run to see what would change)"},
		{"--yes", workerPruneOptions{Yes: true}, ""},
		{"--dry-run", workerPruneOptions{DryRun: true}, ""},
		{"terminal asks", workerPruneOptions{Interactive: true}, ""},
		{"--every without --yes", workerPruneOptions{Every: time.Minute, Interactive: true}, "--every prunes unattended and cannot ask: pass --yes (or --dry-run to only report)"},
		{"--every too short", workerPruneOptions{Every: time.Millisecond, Yes: true}, "--every 1ms: must be at least 1s"},
		{"--delete without --older-than", workerPruneOptions{Delete: true, Yes: true}, "--delete needs --older-than: workers inactive or stale and silent for longer than it are deleted (e.g. --older-than 720h)"},
		{"--batch-size 0", workerPruneOptions{Yes: true, BatchSize: 0}, "--batch-size 0: must be between 1 and 100000"},
		{"--batch-size too big", workerPruneOptions{Yes: true, BatchSize: 1_000_000}, "batch size 1000000: must be between 1 and 100000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			if o.BatchSize == 0 && !strings.Contains(tc.name, "batch-size") {
				o.BatchSize = workers.DefaultPruneBatchSize
			}
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want || ExitCode(err) != ExitUsage):
				t.Errorf("got exit %d, %v\nwant exit 2, %s", ExitCode(err), err, tc.want)
			}
		})
	}
}

func pruneOpts(mut func(*workerPruneOptions)) workerPruneOptions {
	o := workerPruneOptions{Selector: selectorFlags{Roles: []string{"sensor"}}, BatchSize: workers.DefaultPruneBatchSize, Format: output.Table}
	if mut != nil {
		mut(&o)
	}
	return o
}

func storedStatus(t *testing.T, db *dbtest.DB) map[string]string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), "SELECT name, status::text FROM worker")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var n, s string
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		m[n] = s
	}
	return m
}

func TestWorkerPruneRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("dry run changes nothing", func(t *testing.T) {
		t.Parallel()
		db := fleetDB(t)
		before := storedStatus(t, db)
		app, out, errOut := testApp("")
		if err := runWorkerPrune(ctx, app, dbOf(db), pruneOpts(func(o *workerPruneOptions) { o.DryRun = true; o.Format = output.Name })); err != nil {
			t.Fatal(err)
		}
		if out.String() != "sensor-new-01\nsensor-old-01\n" || errOut.String() != "dry run: 2 stale workers would be marked inactive (role sensor); nothing was changed\n" {
			t.Errorf("stdout %q\nstderr %q", out, errOut)
		}
		if after := storedStatus(t, db); !maps.Equal(before, after) {
			t.Errorf("dry run changed %v into %v", before, after)
		}
	})

	t.Run("yes", func(t *testing.T) {
		t.Parallel()
		db := fleetDB(t)
		app, out, errOut := testApp("")
		if err := runWorkerPrune(ctx, app, dbOf(db), pruneOpts(func(o *workerPruneOptions) { o.Yes = true })); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^marked inactive 2 stale workers \(role sensor; 1 batch, \d+ms\)\n$`).MatchString(out.String()) || errOut.Len() != 0 {
			t.Errorf("stdout %q\nstderr %q", out, errOut)
		}
		st := storedStatus(t, db)
		if st["sensor-old-01"] != "inactive" || st["sensor-new-01"] != "inactive" || st["sensor-web-02"] != "active" {
			t.Errorf("after prune: %v", st)
		}
		app, out, _ = testApp("")
		if err := runWorkerPrune(ctx, app, dbOf(db), pruneOpts(func(o *workerPruneOptions) { o.Yes = true })); err != nil || out.String() != "nothing to mark inactive (role sensor)\n" {
			t.Errorf("second run: %v, %q", err, out)
		}
	})

	t.Run("json delete every role", func(t *testing.T) {
		t.Parallel()
		db := fleetDB(t)
		app, out, _ := testApp("")
		err := runWorkerPrune(ctx, app, dbOf(db), pruneOpts(func(o *workerPruneOptions) {
			o.Yes, o.Delete, o.OlderThan, o.Format = true, true, 24*time.Hour, output.JSON
			o.Selector.Roles = []string{"all"}
		}))
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?s)^\{\n  "action": "delete",\n  "scope": "every role",\n  "changed": 1,\n  "batches": 1,\n  "elapsed_seconds": [0-9.]+,\n  "workers": \[\n    \{\n      "id": 6,\n      "name": "sensor-gone-01",\n      "host": "gone-01"\n    \}\n  \]\n\}\n$`)
		if !re.MatchString(out.String()) {
			t.Errorf("stdout %s", out)
		}
	})

	t.Run("terminal confirms", func(t *testing.T) {
		t.Parallel()
		db := fleetDB(t)
		app, out, errOut := testApp("y\n")
		if err := runWorkerPrune(ctx, app, dbOf(db), pruneOpts(func(o *workerPruneOptions) { o.Interactive = true })); err != nil {
			t.Fatal(err)
		}
		listing := regexp.MustCompile(`^NAME +ROLE +STATUS +HOST +RUNTIMES +LAST HEARTBEAT +GRACE\nsensor-new-01 .*\nsensor-old-01 .*\n`)
		if !listing.MatchString(errOut.String()) || !strings.HasSuffix(errOut.String(), "\nMark inactive 2 stale workers (role sensor)? [y/N] ") || !strings.HasPrefix(out.String(), "marked inactive 2 stale workers") {
			t.Errorf("stdout %q\nstderr %q", out, errOut)
		}
	})

	t.Run("terminal declines", func(t *testing.T) {
		t.Parallel()
		db := fleetDB(t)
		for _, answer := range []string{"n\n", "\n", "", "yep\n"} {
			app, out, errOut := testApp(answer)
			err := runWorkerPrune(ctx, app, dbOf(db), pruneOpts(func(o *workerPruneOptions) { o.Interactive = true; o.Delete = true; o.OlderThan = time.Hour }))
			if ExitCode(err) != ExitError || !silent(err) || !strings.HasSuffix(errOut.String(), "? [y/N] aborted: nothing was changed\n") || out.Len() != 0 {
				t.Errorf("answer %q: exit %d, %v, stdout %q, stderr %q", answer, ExitCode(err), err, out, errOut)
			}
		}
		if st := storedStatus(t, db); len(st) != 8 || st["sensor-old-01"] != "active" {
			t.Errorf("declining changed something: %v", st)
		}
	})

	t.Run("nothing to ask about", func(t *testing.T) {
		t.Parallel()
		db := fleetDB(t)
		app, out, errOut := testApp("")
		err := runWorkerPrune(ctx, app, dbOf(db), pruneOpts(func(o *workerPruneOptions) { o.Interactive = true; o.Selector.Host = "web-01" }))
		if err != nil || out.String() != "nothing to mark inactive (role sensor, host web-01)\n" || errOut.Len() != 0 {
			t.Errorf("%v\nstdout %q\nstderr %q", err, out, errOut)
		}
	})
}

// --every prunes at once and then on its interval, picks up workers that
// go stale later, and returns nil when interrupted.
func TestWorkerPruneEvery(t *testing.T) {
	t.Parallel()
	db := fleetDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	app, _, _ := testApp("")
	var logs testsupport.SyncBuffer
	app.Log = slog.New(slog.NewTextHandler(&logs, nil))
	done := make(chan error, 1)
	go func() {
		done <- runWorkerPrune(ctx, app, dbOf(db), pruneOpts(func(o *workerPruneOptions) { o.Yes = true; o.Every = time.Second }))
	}()
	waitUntil(t, 10*time.Second, "the first round", func() bool { return storedStatus(t, db)["sensor-old-01"] == "inactive" })
	if _, err := db.Pool.Exec(ctx, "UPDATE worker SET last_heartbeat = now() - interval '1 hour' WHERE name = 'sensor-web-01'"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "a later round", func() bool { return storedStatus(t, db)["sensor-web-01"] == "inactive" })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("--every returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("--every did not stop")
	}
	if l := logs.String(); !strings.Contains(l, `msg="marked inactive 2 stale workers (role sensor; 1 batch,`) ||
		!strings.Contains(l, `msg="marked inactive 1 stale worker (role sensor; 1 batch,`) || !strings.Contains(l, "stopped pruning") {
		t.Errorf("logs:\n%s", l)
	}
	if st := storedStatus(t, db); st["action-exec-01"] != "busy" || st["sensor-web-02"] != "active" {
		t.Errorf("%v", st)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The commands through cobra: flags, defaults and exit statuses.
func TestWorkerCommands(t *testing.T) {
	t.Parallel()
	db := fleetDB(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"worker", "list", "-o", "name", "--role", "action,hybrid"}, 0, "action-exec-01\nhybrid-edge-01\n", ""},
		{[]string{"worker", "list", "-o", "name", "--status", "stale", "--sort-by", "heartbeat"}, 0, "sensor-new-01\nsensor-old-01\n", ""},
		{[]string{"worker", "stale", "--exit-code", "-o", "name", "--runtime", "shell"}, 3, "sensor-old-01\n", ""},
		{[]string{"worker", "list", "--sort-by", "age"}, 2, "", "Error: --sort-by \"age\": use name or heartbeat\n"},
		{[]string{"worker", "list", "-o", "csv"}, 2, "", "Error: unknown output format \"csv\": use one of table, wide, json, yaml, name\n"},
		{[]string{"worker", "list", "--status", "gone"}, 2, "", "Error: unknown worker status \"gone\": use one of active, stale, inactive, busy, error\n"},
		{[]string{"worker", "prune"}, 2, "", "Error: refusing to mark inactive workers without confirmation: stdin is not a terminal (pass --yes to prune, or --dry-run to see what would change)\n"},
		{[]string{"worker", "prune", "--delete", "--yes"}, 2, "", "Error: --delete needs --older-than: workers inactive or stale and silent for longer than it are deleted (e.g. --older-than 720h)\n"},
		{[]string{"worker", "prune", "--dry-run", "--yes", "-o", "name"}, 0, "sensor-new-01\nsensor-old-01\n", ""},
		{[]string{"worker", "prune", "--dry-run", "-o", "name"}, 0, "sensor-new-01\nsensor-old-01\n", "dry run: 2 stale workers would be marked inactive (role sensor); nothing was changed\n"},
		{[]string{"worker", "prune", "--dry-run", "-o", "name", "--role", "all", "--older-than", "30s"}, 0, "sensor-batch-01\nsensor-new-01\nsensor-old-01\nsensor-web-02\n", "dry run: 4 stale workers would be marked inactive (every role); nothing was changed\n"},
		{[]string{"worker", "prune", "--dry-run", "-o", "name", "--role", "action", "--older-than", "1s"}, 0, "", "dry run: 0 stale workers would be marked inactive (role action); nothing was changed\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			app, out, errOut := testApp("")
			app.Environ = []string{"ATTUNE__DATABASE__URL=" + db.URL}
			code := Execute(context.Background(), app, tc.args)
			if code != tc.code || out.String() != tc.stdout || (tc.stderr != "" && errOut.String() != tc.stderr) {
				t.Errorf("exit %d, want %d\nstdout %q, want %q\nstderr %q, want %q", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
		})
	}
}

// BenchmarkPrintWorkers prints 10,000 stale workers as worker stale does.
func BenchmarkPrintWorkers(b *testing.B) {
	l := workers.Listing{At: goldenNow}
	for i := range 10_000 {
		hb := goldenNow.Add(-time.Duration(600+i) * time.Second)
		l.Workers = append(l.Workers, workers.Worker{
			ID: int64(i), Name: "bench-" + strconv.Itoa(i), Role: "sensor", Type: "local", Status: "active", State: "stale",
			Host: "host-" + strconv.Itoa(i%1000), LastHeartbeat: &hb, Silence: goldenNow.Sub(hb),
			Capabilities: workers.Capabilities{Runtimes: []string{"built-in sensor", "python", "shell"}},
			Created:      goldenNow.Add(-time.Hour), Updated: goldenNow.Add(-time.Hour),
		})
	}
	for _, f := range []output.Format{output.Table, output.Wide, output.JSON} {
		b.Run(string(f), func(b *testing.B) {
			for b.Loop() {
				if err := printWorkers(io.Discard, workerListing{Listing: l}, f, output.Palette{}, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// dbOf is the database.DB the commands take, over a test database's pool.
func dbOf(db *dbtest.DB) *database.DB { return &database.DB{Pool: db.Pool, Schema: db.Schema} }

// slowWriter is a terminal or pager that takes its time with every write.
type slowWriter struct {
	bytes.Buffer
	delay time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.Buffer.Write(p)
}

// A consumer slower than database.statement_timeout (a pager, a slow
// terminal) is not a timeout: the timeout bounds each FETCH on the server,
// never the time the rows take to be printed.
func TestWorkerListSlowReader(t *testing.T) {
	t.Parallel()
	tdb := fleetDB(t)
	ctx := context.Background()
	db, err := database.Open(ctx, database.Options{URL: tdb.URL, Schema: tdb.Schema, StatementTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app, _, _ := testApp("")
	app.Config.Database.StatementTimeout = config.Seconds(100 * time.Millisecond)
	out := &slowWriter{delay: 60 * time.Millisecond}
	app.Out = out
	if err := runWorkerList(ctx, app, db, listOpts(func(o *workerListOptions) { o.Format = output.Name })); err != nil {
		t.Fatalf("a slow reader failed the listing: %v", err)
	}
	if n := strings.Count(out.String(), "\n"); n < 5 {
		t.Errorf("printed %d names, want the fleet (each write took %s, the timeout is 100ms):\n%s", n, out.delay, out.String())
	}
}

// A stream that stopped after its first batch says what really stopped it,
// never that the table is locked: the server's statement timeout on a
// batch, or the server ending a session whose reader was too slow. The
// errors are real server errors, wrapped as the stream wraps them.
func TestExplainStreamError(t *testing.T) {
	t.Parallel()
	tdb := dbtest.New(t)
	ctx := context.Background()
	conn, err := tdb.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	_, timeout := conn.Exec(ctx, "SET statement_timeout = 50; SELECT pg_sleep(1)")
	if timeout == nil {
		t.Fatal("pg_sleep did not time out")
	}
	if _, err := conn.Exec(ctx, "RESET statement_timeout"); err != nil {
		t.Fatal(err)
	}
	idle, err := tdb.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Release()
	_, err = idle.Exec(ctx, "SET idle_in_transaction_session_timeout = 50")
	if err == nil {
		_, err = idle.Exec(ctx, "BEGIN")
	}
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	_, slow := idle.Exec(ctx, "SELECT 1")
	if slow == nil {
		t.Fatal("the idle transaction was not ended")
	}
	idle.Conn().Close(ctx)
	idleLimit := 50 * time.Millisecond

	app, _, _ := testApp("")
	app.Config.Database.StatementTimeout = config.Seconds(30 * time.Second)
	for _, tc := range []struct {
		err  error
		idle time.Duration
		want string
	}{
		{timeout, 0, "listing workers: reading batch 3: the server took longer than database.statement_timeout (30s) to produce the next 1000 rows (2000 were printed before): " +
			"the time spent printing them does not count, so the server is overloaded or the filters make it scan far more rows than it returns; " +
			"narrow the filters, retry later, or raise database.statement_timeout"},
		{slow, 300 * time.Millisecond, "listing workers: reading batch 3: the server ended the session because the output was read too slowly " +
			"(idle_in_transaction_session_timeout; 2000 rows were printed): write the output to a file, or raise that setting for this role"},
	} {
		se := &workers.StreamError{Step: "reading batch 3", Batch: 3, BatchSize: 1000, Delivered: 2000, Err: tc.err, Idle: tc.idle, IdleLimit: idleLimit}
		got := explainWorkerError(ctx, app, dbOf(tdb), se, "listing workers")
		if got == nil || got.Error() != tc.want {
			t.Errorf("%v:\ngot  %v\nwant %s", tc.err, got, tc.want)
		}
		if strings.Contains(got.Error(), "locked") {
			t.Errorf("says locked: %v", got)
		}
	}
}
