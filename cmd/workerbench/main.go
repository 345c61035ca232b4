// Command workerbench measures attunectl's worker inspection and pruning on
// big worker tables, for the figures `attunectl help performance` publishes. Every figure is a
// ratio of medians of commands run alternately in the same run, against
// psql as the fair floor: `psql -X -A -t` (no psqlrc, unaligned, tuples
// only) with attunectl's session settings (jit off, the schema on the
// search_path), running the very statement attunectl sends.
//
//   - `attunectl worker stale` on 1,000,000 workers of which 1% are stale,
//     and the same listings streamed (`workerbench stream --stale`), with
//     EXPLAIN (ANALYZE, BUFFERS) of every statement;
//   - `worker list` of every worker, -o name, table and json, streamed
//     through workers.Stream by `workerbench stream` (the CLI's printers
//     still print through List), wall time and peak RSS against psql's;
//   - `worker list --runtime ruby` (1% of the fleet) with and without the
//     GIN index on the runtimes (migration 00012), and the HOT share of
//     heartbeats without it;
//   - `attunectl worker prune --delete` of 500,000 workers while 100 workers
//     heartbeat every second: the longest a heartbeat waited;
//   - the share of heartbeats that are HOT updates,
//
// optionally also with a partial index on worker(last_heartbeat)
// (--indexes none,partial), which serves the --older-than queries but makes
// every heartbeat a non-HOT update on PostgreSQL 15 and older. Live
// workers' heartbeats are a day ahead and dead ones' ten days behind, so no
// worker changes state during a slow run or its EXPLAINs.
//
// It runs the real attunectl binary, itself (`workerbench stream`) and psql
// as subprocesses. Without --database-url it starts a PostgreSQL server of
// its own (pkg/embeddedpg, durable settings unless --ephemeral) in a
// temporary directory and removes it at the end. With --database-url it
// works in a schema of its own (--schema, dropped at the end unless --keep)
// and needs max_connections of at least --heartbeaters + 20.
//
//	go run ./cmd/workerbench --rows 1000000 --indexes none   # everything, embedded server
//	go run ./cmd/workerbench --database-url postgres://u:p@db/bench --rows 200000
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/workers"
)

type options struct {
	URL          string
	Schema       string
	Attunectl    string
	Psql         string
	Rows         int
	StalePercent float64
	DeleteRows   int
	Heartbeaters int
	HOTSeconds   int
	Runs         int
	Indexes      string
	Ephemeral    bool
	Keep         bool
	SkipStale    bool
	SkipPrune    bool
	SkipList     bool
	SkipFullList bool
	ListRuns     int
	// Before is an attunectl binary built before the runtime index (ca0e4ed) (for example at
	// commit ca0e4ed), timed on --runtime ruby without the GIN index: "the
	// same today" of the issue's target.
	Before string
}

func main() {
	var o options
	flag.StringVar(&o.URL, "database-url", "", "PostgreSQL URL to benchmark on (default: start a server of its own)")
	flag.StringVar(&o.Schema, "schema", "workerbench", "schema to work in: dropped first, and at the end unless --keep")
	flag.StringVar(&o.Attunectl, "attunectl", "", "attunectl binary (default: go build ./cmd/attunectl)")
	flag.StringVar(&o.Psql, "psql", "psql", "psql binary")
	flag.IntVar(&o.Rows, "rows", 1_000_000, "workers in the table for worker stale")
	flag.Float64Var(&o.StalePercent, "stale-percent", 1, "percentage of those that are stale")
	flag.IntVar(&o.DeleteRows, "delete-rows", 500_000, "workers prune --delete removes (as many live ones stay)")
	flag.IntVar(&o.Heartbeaters, "heartbeaters", 100, "workers heartbeating every second during the prune")
	flag.IntVar(&o.HOTSeconds, "hot-seconds", 20, "seconds of steady-state heartbeats to measure the HOT share")
	flag.IntVar(&o.Runs, "runs", 5, "timed runs of each command")
	flag.StringVar(&o.Indexes, "indexes", "none", "index variants: none (the migrations' indexes), partial (+ worker(last_heartbeat) WHERE status = 'active')")
	flag.BoolVar(&o.Ephemeral, "ephemeral", false, "own server without fsync (faster, less realistic)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the schema (and the own server's directory) at the end")
	flag.BoolVar(&o.SkipStale, "skip-stale", false, "skip the worker stale benchmark")
	flag.BoolVar(&o.SkipPrune, "skip-prune", false, "skip the prune benchmark")
	flag.BoolVar(&o.SkipList, "skip-list", false, "skip the worker list (streaming) and --runtime benchmarks")
	flag.BoolVar(&o.SkipFullList, "skip-full-list", false, "skip the listings of every worker (keep --runtime ruby)")
	flag.IntVar(&o.ListRuns, "list-runs", 3, "timed runs of each full listing (they take seconds each at 1,000,000 rows)")
	flag.StringVar(&o.Before, "before", "", "attunectl binary from before the runtime index (ca0e4ed) (e.g. built at ca0e4ed), timed on --runtime ruby without the index")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "workerbench: %s\n", database.Redact(err.Error()))
		os.Exit(1)
	}
}

// bench is one run's state.
type bench struct {
	o    options
	url  string // without credentials in messages: database.Redact
	pool *pgxpool.Pool
	db   *database.DB
	out  io.Writer
}

func run(ctx context.Context, o options) error {
	b := &bench{o: o, out: os.Stdout}
	if o.URL == "" {
		url, stop, err := startServer(ctx, o)
		if err != nil {
			return err
		}
		defer stop()
		b.url = url
	} else {
		b.url = o.URL
	}
	if o.Attunectl == "" {
		bin, err := buildAttunectl()
		if err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(bin))
		o.Attunectl, b.o.Attunectl = bin, bin
	}
	if _, err := exec.LookPath(o.Psql); err != nil {
		return fmt.Errorf("psql not found: %w (install postgresql-client or pass --psql)", err)
	}

	db, err := b.setupSchema(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	b.pool, b.db = db.Pool, db
	if !o.Keep {
		defer func() {
			_, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{o.Schema}.Sanitize()+" CASCADE")
		}()
	}

	var version string
	_ = b.pool.QueryRow(ctx, "SHOW server_version").Scan(&version)
	b.printf("# workerbench\n\nPostgreSQL %s, %d CPUs, %s, attunectl %s\n\n", version, runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, o.Attunectl)
	b.printf("Command: `go run ./cmd/workerbench %s`\n\n", strings.Join(redactArgs(os.Args[1:]), " "))

	for _, variant := range strings.Split(o.Indexes, ",") {
		variant = strings.TrimSpace(variant)
		if variant != "none" && variant != "partial" {
			return fmt.Errorf("--indexes: unknown variant %q (use none, partial)", variant)
		}
		if !o.SkipStale {
			if err := b.staleBench(ctx, variant); err != nil {
				return err
			}
		}
		if !o.SkipPrune {
			if err := b.pruneBench(ctx, variant); err != nil {
				return err
			}
		}
	}
	return nil
}

func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = database.Redact(a)
	}
	return out
}

func (b *bench) printf(format string, args ...any) {
	fmt.Fprintf(b.out, format, args...)
}

// startServer starts a PostgreSQL of the benchmark's own, sized like a
// small production server rather than a test one.
func startServer(ctx context.Context, o options) (string, func(), error) {
	root, err := os.MkdirTemp("/tmp", "wbench-")
	if err != nil {
		return "", nil, err
	}
	// As root the server runs as another user, which must reach the directory.
	if err := os.Chmod(root, 0o755); err != nil {
		return "", nil, err
	}
	srv, err := embeddedpg.Start(ctx, embeddedpg.Options{
		DataDir:    filepath.Join(root, "data"),
		Ephemeral:  o.Ephemeral,
		Foreground: true,
		Settings: map[string]string{
			"max_connections":      strconv.Itoa(o.Heartbeaters + 50),
			"shared_buffers":       "512MB",
			"work_mem":             "16MB",
			"maintenance_work_mem": "256MB",
			"max_wal_size":         "4GB",
		},
	})
	if err != nil {
		os.RemoveAll(root)
		return "", nil, fmt.Errorf("starting a PostgreSQL server for the benchmark: %w (or pass --database-url)", err)
	}
	fmt.Fprintf(os.Stderr, "workerbench: started PostgreSQL in %s\n", root)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Stop(sctx)
		if !o.Keep {
			os.RemoveAll(root)
		}
	}
	return srv.ConnString(embeddedpg.DefaultDatabase), stop, nil
}

func buildAttunectl() (string, error) {
	dir, err := os.MkdirTemp("", "workerbench-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "attunectl")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/attune-automation/attunectl/cmd/attunectl")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building attunectl: %w\n%s(run from the repository, or pass --attunectl)", err, out)
	}
	return bin, nil
}

// setupSchema (re)creates the schema and migrates it with attunectl's migrations.
func (b *bench) setupSchema(ctx context.Context) (*database.DB, error) {
	admin, err := pgx.Connect(ctx, b.url)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", database.RedactError(err))
	}
	_, err = admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{b.o.Schema}.Sanitize()+" CASCADE")
	admin.Close(ctx)
	if err != nil {
		return nil, err
	}
	db, err := database.Open(ctx, database.Options{URL: b.url, Schema: b.o.Schema, MaxConns: 10})
	if err != nil {
		return nil, err
	}
	if err := database.MigrateUp(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating schema %s: %w", b.o.Schema, err)
	}
	return db, nil
}

func (b *bench) exec(ctx context.Context, sql string, args ...any) error {
	if _, err := b.pool.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", firstLine(sql), err)
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		return s[:i] + " …"
	}
	return s
}

// setIndex makes the variant's indexes exist.
func (b *bench) setIndex(ctx context.Context, variant string) error {
	if err := b.exec(ctx, "DROP INDEX IF EXISTS workerbench_last_heartbeat"); err != nil {
		return err
	}
	if variant == "partial" {
		return b.exec(ctx, "CREATE INDEX workerbench_last_heartbeat ON worker (last_heartbeat) WHERE status = 'active'")
	}
	return nil
}

// fill replaces the table's rows. Workers are sensors but every tenth, an
// action worker; they advertise two or three runtimes (every hundredth
// ruby, which no other worker has) and a 60 s heartbeat interval, and carry
// an instance id in meta, like rows sensor run writes. Callers set the live
// workers' heartbeats in the future and the dead ones' days in the past, so
// that no worker changes state during a slow run, EXPLAINs included.
func (b *bench) fill(ctx context.Context, rows int, heartbeat, status string) error {
	begin := time.Now()
	if err := b.exec(ctx, "TRUNCATE worker RESTART IDENTITY CASCADE"); err != nil {
		return err
	}
	err := b.exec(ctx, `
		INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat, created, updated)
		SELECT 'bench-' || i,
		       CASE WHEN i % 10 = 4 THEN 'action' ELSE 'sensor' END::worker_role_enum,
		       'local', (`+status+`)::worker_status_enum, 'host-' || (i % 1000),
		       jsonb_build_object(
		           'runtimes', CASE WHEN i % 100 = 17 THEN '["built-in sensor", "ruby", "shell"]'::jsonb
		                                  WHEN i % 3 = 0 THEN '["built-in sensor", "python", "shell"]'::jsonb
		                                  WHEN i % 3 = 1 THEN '["built-in sensor", "node.js", "shell"]'::jsonb
		                                  ELSE '["built-in sensor", "shell"]'::jsonb END,
		           'max_concurrent_sensors', 10, 'sensor_version', '0.1.0', 'heartbeat_interval', 60,
		           'runtime_versions', '{"python": "3.11.7", "node.js": "v20.11.1"}'::jsonb),
		       jsonb_build_object('instance_id', 'i-' || i, 'pid', 1000 + i % 30000, 'hostname', 'host-' || (i % 1000)),
		       `+heartbeat+`, now() - interval '60 days', now() - interval '1 day'
		FROM generate_series(1, $1::int) AS i`, rows)
	if err != nil {
		return err
	}
	if err := b.exec(ctx, "VACUUM (ANALYZE) worker"); err != nil {
		return err
	}
	// The load left hundreds of megabytes dirty; written out now, they are
	// not written (and fsynced) by a checkpoint in the middle of the timed
	// runs. Without the right (not a superuser, nor pg_checkpoint) the
	// benchmark goes on and says so.
	if err := b.exec(ctx, "CHECKPOINT"); err != nil {
		fmt.Fprintf(os.Stderr, "workerbench: CHECKPOINT after the load failed (%v): a checkpoint may write during the timed runs\n", err)
	}
	var size string
	_ = b.pool.QueryRow(ctx, "SELECT pg_size_pretty(pg_total_relation_size('worker'))").Scan(&size)
	fmt.Fprintf(os.Stderr, "workerbench: %d rows in %v (%s with indexes)\n", rows, time.Since(begin).Round(time.Millisecond), size)
	return nil
}

// ---------------------------------------------------------------- worker stale

// staleCase is one command timed against psql running its statement.
type staleCase struct {
	title string
	args  []string
	opts  workers.ListOptions
}

func (b *bench) staleBench(ctx context.Context, variant string) error {
	o := b.o
	every := int(100 / o.StalePercent)
	// Every `every`-th worker stopped heartbeating between 10 and 10.1
	// days ago; the others' heartbeats are a day ahead (as if the clock of
	// the database had been set back), so that none of them can age into
	// staleness however slow the run: --older-than 5m and the per-worker
	// grace both select exactly the dead ones, from the first statement to
	// the last EXPLAIN.
	hb := fmt.Sprintf(`CASE WHEN i %% %d = 0 THEN now() - interval '10 days' - (i %% 10000) * interval '1 second'
	                   ELSE now() + interval '1 day' - (i %% 30) * interval '1 second' END`, every)
	if err := b.fill(ctx, o.Rows, hb, "'active'"); err != nil {
		return err
	}
	if err := b.setIndex(ctx, variant); err != nil {
		return err
	}
	b.printf("## worker stale, %d workers, %.3g%% stale, indexes: %s\n\n", o.Rows, o.StalePercent, describeVariant(variant))

	cases := []staleCase{
		{"worker stale (per-worker grace, every role)", []string{"worker", "stale"}, workers.ListOptions{StaleOnly: true}},
		{"worker stale --role sensor --older-than 5m (the classic stale query)", []string{"worker", "stale", "--role", "sensor", "--older-than", "5m"},
			workers.ListOptions{StaleOnly: true, OlderThan: 5 * time.Minute, Selector: workers.Selector{Roles: []string{"sensor"}}}},
		{"worker stale -o json", []string{"worker", "stale", "-o", "json"}, workers.ListOptions{StaleOnly: true}},
		{"worker stale -o name", []string{"worker", "stale", "-o", "name"}, workers.ListOptions{StaleOnly: true}},
	}
	b.printf("| command | rows | attunectl median (min) | psql median (min) | ratio |\n|---|---:|---:|---:|---:|\n")
	for _, c := range cases {
		// The statement attunectl runs, with the fields its format reads.
		format := "table"
		switch {
		case slices.Contains(c.args, "json"):
			format = "json"
		case slices.Contains(c.args, "name"):
			format = "name"
		}
		q, args := workers.StreamQuery(c.opts, listFields[format])
		sql := inline(q, args)
		var n int64
		if err := b.pool.QueryRow(ctx, "SELECT count(*) FROM ("+sql+") s").Scan(&n); err != nil {
			return fmt.Errorf("counting %s: %w", c.title, err)
		}
		if want := int64(o.Rows / every); n != want {
			return fmt.Errorf("%s selects %d workers, want the %d stale ones: the live workers aged past their grace (a slow machine?)", c.title, n, want)
		}
		ta, tp, err := b.timePair(ctx, c.args, sql)
		if err != nil {
			return err
		}
		b.printf("| `attunectl %s` | %d | %s (%s) | %s (%s) | %.2f |\n", strings.Join(c.args, " "), n,
			ms(median(ta)), ms(slices.Min(ta)), ms(median(tp)), ms(slices.Min(tp)), float64(median(ta))/float64(median(tp)))
	}
	b.printf("\nattunectl and psql each run %d times, alternately, output to /dev/null; psql runs the statement attunectl sends "+
		"with the parameters written as literals, unaligned and tuples only, with attunectl's session settings "+
		"(`psql -X -A -t -c 'SET jit = off' -c 'SET search_path …' -c '<statement>'`). Ratio: median over median, same run.\n\n", o.Runs)

	if !o.SkipList {
		if err := b.listBench(ctx); err != nil {
			return err
		}
	}

	if err := b.hotBench(ctx, variant); err != nil {
		return err
	}

	// EXPLAIN of every statement.
	type plan struct{ title, sql string }
	var plans []plan
	for _, c := range cases[:2] {
		q, args := workers.StreamQuery(c.opts, listFields["table"])
		plans = append(plans, plan{c.title + " (the statement of the table)", inline(q, args)})
	}
	q, args := workers.StreamQuery(workers.ListOptions{Status: "active", Selector: workers.Selector{Roles: []string{"sensor"}, Runtime: "python"}}, listFields["table"])
	plans = append(plans, plan{"worker list --role sensor --runtime python --status active (the classic runtime query)", inline(q, args)})
	q, args = workers.StreamQuery(workers.ListOptions{Selector: workers.Selector{Runtime: "ruby"}}, listFields["table"])
	plans = append(plans, plan{"worker list --runtime ruby (1% of the fleet; the statement of the table)", inline(q, args)})
	q, args = workers.PruneQuery(workers.PruneOptions{Selector: workers.Selector{Roles: []string{"sensor"}}})
	plans = append(plans, plan{"worker prune: first batch (mark inactive, 5000 rows; rolled back)", inline(q, args)})
	for _, p := range plans {
		plan, err := b.explain(ctx, p.sql)
		if err != nil {
			return err
		}
		b.printf("### EXPLAIN %s\n\n```\n%s```\n\n", p.title, plan)
	}
	return nil
}

func describeVariant(v string) string {
	if v == "partial" {
		return "the migrations' + `CREATE INDEX ON worker (last_heartbeat) WHERE status = 'active'`"
	}
	return "the migrations' only (worker_pkey, name unique, idx_worker_role, idx_worker_role_status)"
}

// timePair runs attunectl with args and psql with sql alternately.
func (b *bench) timePair(ctx context.Context, args []string, sql string) (ta, tp []time.Duration, err error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	defer devnull.Close()
	timeCmd := func(cmd *exec.Cmd) (time.Duration, error) {
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = devnull, &stderr
		begin := time.Now()
		err := cmd.Run()
		d := time.Since(begin)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			err = nil // worker stale --exit-code
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w\n%s", cmd.Args[0], err, database.Redact(stderr.String()))
		}
		return d, nil
	}
	env := append(os.Environ(), "ATTUNE__DATABASE__URL="+b.url, "ATTUNE__DATABASE__SCHEMA="+b.o.Schema, "NO_COLOR=1")
	// One untimed run of each warms the caches.
	for i := -1; i < b.o.Runs; i++ {
		a := exec.CommandContext(ctx, b.o.Attunectl, args...)
		a.Env = env
		p := b.psql(ctx, sql)
		da, err := timeCmd(a)
		if err != nil {
			return nil, nil, err
		}
		dp, err := timeCmd(p)
		if err != nil {
			return nil, nil, err
		}
		if i >= 0 {
			ta, tp = append(ta, da), append(tp, dp)
		}
	}
	return ta, tp, nil
}

// psql runs sql as the fair floor: no psqlrc, unaligned, tuples only, with
// the session settings attunectl's connections have (jit off, the schema
// first on the search_path).
func (b *bench) psql(ctx context.Context, sql string) *exec.Cmd {
	return exec.CommandContext(ctx, b.o.Psql, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", b.url,
		"-c", "SET jit = off", "-c", "SET search_path = "+pgx.Identifier{b.o.Schema}.Sanitize()+", public", "-c", sql)
}

// explain returns EXPLAIN (ANALYZE, BUFFERS) of sql, run in a transaction
// that is rolled back (the prune statements write).
func (b *bench) explain(ctx context.Context, sql string) (string, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql)
	if err != nil {
		return "", fmt.Errorf("explaining %s: %w", firstLine(sql), err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// inline writes the arguments of a statement into it as literals, for psql
// (which cannot bind parameters before version 16) and EXPLAIN.
func inline(q string, args []any) string {
	re := regexp.MustCompile(`\$(\d+)`)
	return re.ReplaceAllStringFunc(q, func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		if n < 1 || n > len(args) {
			return m
		}
		return literal(args[n-1])
	})
}

func literal(v any) string {
	switch t := v.(type) {
	case nil:
		return "NULL"
	case time.Duration:
		return fmt.Sprintf("'%d milliseconds'", t.Milliseconds())
	case string:
		return "'" + strings.ReplaceAll(t, "'", "''") + "'"
	case []string:
		q := make([]string, len(t))
		for i, s := range t {
			q[i] = `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
		}
		return literal("{" + strings.Join(q, ",") + "}")
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	}
	panic(fmt.Sprintf("workerbench: no literal for %T", v))
}

// ---------------------------------------------------------------- heartbeats

// heartbeatSQL is the sensor worker's own heartbeat statement.
var heartbeatSQL = workers.HeartbeatSQL()

// heartbeatStats are the latencies of heartbeats, one per second per worker.
type heartbeatStats struct {
	mu        sync.Mutex
	latencies []time.Duration
	gone      int // heartbeats that found their row deleted
	errors    []error
}

// heartbeat runs one worker's heartbeat every second on a connection of its
// own until ctx ends; the first after startDelay.
func heartbeat(ctx context.Context, url, schema string, id int64, startDelay time.Duration, st *heartbeatStats) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		st.add(0, false, err)
		return
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize() + ", public"
	cfg.RuntimeParams["application_name"] = "workerbench-heartbeat"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		st.add(0, false, err)
		return
	}
	defer conn.Close(context.Background())
	timer := time.NewTimer(startDelay)
	defer timer.Stop()
	inst := "i-" + strconv.FormatInt(id, 10)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(time.Second)
		begin := time.Now()
		var at time.Time
		err := conn.QueryRow(ctx, heartbeatSQL, id, inst).Scan(&at)
		d := time.Since(begin)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, pgx.ErrNoRows) {
			st.add(d, true, nil)
			continue
		}
		st.add(d, false, err)
	}
}

func (s *heartbeatStats) add(d time.Duration, gone bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errors = append(s.errors, err)
		return
	}
	s.latencies = append(s.latencies, d)
	if gone {
		s.gone++
	}
}

func (s *heartbeatStats) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.latencies) == 0 {
		return "no heartbeats"
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	p := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))] }
	out := fmt.Sprintf("%d heartbeats: median %s, p99 %s, max %s", len(l), ms(p(0.5)), ms(p(0.99)), ms(l[len(l)-1]))
	if s.gone > 0 {
		out += fmt.Sprintf(" (%d found their row deleted)", s.gone)
	}
	if len(s.errors) > 0 {
		out += fmt.Sprintf("; %d errors, first: %v", len(s.errors), s.errors[0])
	}
	return out
}

func (s *heartbeatStats) max() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.latencies) == 0 {
		return 0
	}
	return slices.Max(s.latencies)
}

// updateCounts reads the worker table's update counters. A backend sends
// its statistics lazily, but always when it exits: the heartbeat connections
// must have ended, and the pool's own connections (which ran the rolled-back
// EXPLAIN statements) are closed first.
func (b *bench) updateCounts(ctx context.Context) (upd, hot int64, err error) {
	b.pool.Reset()
	time.Sleep(300 * time.Millisecond)
	if _, err := b.pool.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return 0, 0, err
	}
	err = b.pool.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = to_regclass('worker')`).Scan(&upd, &hot)
	return upd, hot, err
}

// heartbeaters runs n heartbeating workers on ids until the returned stop
// is called; stop waits for their connections to close.
func (b *bench) heartbeaters(ctx context.Context, ids []int64, delays []time.Duration, st *heartbeatStats) (stop func()) {
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			heartbeat(hctx, b.url, b.o.Schema, id, delays[i], st)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// hotBench heartbeats --heartbeaters live workers every second and reports
// the share of HOT updates: over a 3 s warm-up, in which each worker's first
// heartbeat moves its row off a page the bulk load filled, and over the
// --hot-seconds that follow (the steady state).
func (b *bench) hotBench(ctx context.Context, variant string) error {
	every := int64(100 / b.o.StalePercent)
	var ids []int64
	stride := int64(b.o.Rows / b.o.Heartbeaters)
	for i := range int64(b.o.Heartbeaters) {
		id := i*stride + 1
		if id%every == 0 {
			id++
		}
		ids = append(ids, id)
	}
	b.printf("### Heartbeats, indexes: %s\n\n%d workers heartbeating every second (the sensor worker's heartbeat statement):\n\n", variant, len(ids))
	for _, phase := range []struct {
		name string
		d    time.Duration
	}{{"warm-up (first heartbeats after the bulk load)", 3 * time.Second}, {"steady state", time.Duration(b.o.HOTSeconds) * time.Second}} {
		delays := make([]time.Duration, len(ids))
		for i := range delays {
			delays[i] = time.Duration(rand.Int64N(int64(time.Second)))
		}
		upd0, hot0, err := b.updateCounts(ctx)
		if err != nil {
			return err
		}
		var st heartbeatStats
		stop := b.heartbeaters(ctx, ids, delays, &st)
		select {
		case <-ctx.Done():
		case <-time.After(phase.d):
		}
		stop() // the heartbeat connections close and flush their statistics
		time.Sleep(500 * time.Millisecond)
		upd1, hot1, err := b.updateCounts(ctx)
		if err != nil {
			return err
		}
		b.printf("- %s, %s: %s; HOT updates %d of %d (%.1f%%)\n", phase.name, phase.d, st.summary(), hot1-hot0, upd1-upd0, pct(hot1-hot0, upd1-upd0))
	}
	b.printf("\n")
	return ctx.Err()
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// ---------------------------------------------------------------- prune --delete

func (b *bench) pruneBench(ctx context.Context, variant string) error {
	o := b.o
	total := 2 * o.DeleteRows
	// Odd ids: inactive sensor workers silent for 40 days (the prune deletes
	// them); even ids: live workers.
	hb := `CASE WHEN i % 2 = 1 THEN now() - interval '40 days' ELSE now() + interval '1 day' - (i % 30) * interval '1 second' END`
	status := `CASE WHEN i % 2 = 1 THEN 'inactive' ELSE 'active' END`
	if err := b.fill(ctx, total, hb, status); err != nil {
		return err
	}
	if err := b.setIndex(ctx, variant); err != nil {
		return err
	}
	var deletable int64
	po := workers.PruneOptions{Selector: workers.Selector{Roles: []string{"sensor"}}, Delete: true, OlderThan: 720 * time.Hour}
	deletable, err := workers.PruneCount(ctx, b.db, po)
	if err != nil {
		return err
	}
	b.printf("## worker prune --delete, %d of %d workers, %d heartbeating, indexes: %s\n\n", deletable, total, o.Heartbeaters, describeVariant(variant))
	q, args := workers.PruneQuery(po)
	plan, err := b.explain(ctx, inline(q, args))
	if err != nil {
		return err
	}
	b.printf("### EXPLAIN worker prune --delete: first batch (rolled back)\n\n```\n%s```\n\n", plan)

	// 80% of the heartbeaters are live workers spread over the table; 20%
	// are dead workers that come back during the prune: their first
	// heartbeat may meet a batch that holds their row.
	var ids []int64
	var delays []time.Duration
	stride := int64(total / o.Heartbeaters)
	for i := range int64(o.Heartbeaters) {
		id := i*stride + 2 // even: live
		delay := time.Duration(rand.Int64N(int64(time.Second)))
		if i%5 == 4 {
			id++ // odd: deletable; comes back within the first 10 s
			delay = time.Duration(rand.Int64N(int64(10 * time.Second)))
		}
		ids, delays = append(ids, id), append(delays, delay)
	}
	upd0, hot0, err := b.updateCounts(ctx)
	if err != nil {
		return err
	}
	var st heartbeatStats
	stop := b.heartbeaters(ctx, ids, delays, &st)
	time.Sleep(2 * time.Second) // every live heartbeater has beaten once

	cmdArgs := []string{"worker", "prune", "--delete", "--older-than", "720h", "--yes"}
	cmd := exec.CommandContext(ctx, o.Attunectl, cmdArgs...)
	cmd.Env = append(os.Environ(), "ATTUNE__DATABASE__URL="+b.url, "ATTUNE__DATABASE__SCHEMA="+o.Schema, "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	begin := time.Now()
	err = cmd.Run()
	took := time.Since(begin)
	time.Sleep(2 * time.Second) // heartbeats after the prune
	stop()
	if err != nil {
		return fmt.Errorf("attunectl %s: %w\n%s", strings.Join(cmdArgs, " "), err, database.Redact(stderr.String()))
	}
	time.Sleep(500 * time.Millisecond)
	upd1, hot1, err := b.updateCounts(ctx)
	if err != nil {
		return err
	}
	var left, returned int64
	_ = b.pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE id % 2 = 1) FROM worker").Scan(&left, &returned)
	verdict := "no heartbeat waited more than 1 s"
	if st.max() > time.Second {
		verdict = "SOME HEARTBEAT WAITED MORE THAN 1 s"
	}
	b.printf("`attunectl %s`: %s in %s (%d workers left, %d of them dead workers that came back before the prune reached them).\n\n",
		strings.Join(cmdArgs, " "), strings.TrimSpace(stdout.String()), ms(took), left, returned)
	b.printf("Heartbeats during the prune: %s — %s. HOT updates %d of %d (%.1f%%).\n\n",
		st.summary(), verdict, hot1-hot0, upd1-upd0, pct(hot1-hot0, upd1-upd0))
	return nil
}

// ---------------------------------------------------------------- helpers

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.SortFunc(s, func(a, b time.Duration) int { return cmp.Compare(a, b) })
	return s[len(s)/2]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}

// ---------------------------------------------------------------- worker list, streamed

type timed struct {
	d   []time.Duration
	rss []int64 // peak resident set, KiB
}

func (t timed) median() time.Duration { return median(t.d) }
func (t timed) maxRSS() int64         { return slices.Max(t.rss) }

// timeAlternately runs each command of mk once untimed, then runs times
// each, alternately, with stdout to /dev/null, and returns their wall times
// and peak RSS.
func (b *bench) timeAlternately(ctx context.Context, runs int, mk ...func() *exec.Cmd) ([]timed, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	out := make([]timed, len(mk))
	for i := -1; i < runs; i++ {
		for j, m := range mk {
			cmd := m()
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = devnull, &stderr
			begin := time.Now()
			err := cmd.Run()
			d := time.Since(begin)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w\n%s", cmd.Args[0], strings.Join(redactArgs(cmd.Args[1:2]), " "), err, database.Redact(stderr.String()))
			}
			if i >= 0 {
				out[j].d = append(out[j].d, d)
				var rss int64
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					rss = ru.Maxrss
				}
				out[j].rss = append(out[j].rss, rss)
			}
		}
	}
	return out, nil
}

func mib(kib int64) string { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }

// listBench times attunectl's listings of every worker (worker list -o
// name, table, json), which stream, against psql running the statement
// they run; then --runtime ruby with and without the
// GIN index on the runtimes, with the HOT share of heartbeats without it
// (the share with it is the staleBench's).
func (b *bench) listBench(ctx context.Context) error {
	o := b.o
	if o.SkipFullList {
		return b.runtimeBench(ctx)
	}
	b.printf("### worker list, streamed: %d workers\n\n", o.Rows)
	b.printf("`attunectl worker list -o FORMAT` streams with workers.Stream (one statement, rows decoded in batches of %d, the fields the format shows, "+
		"cordons and sensors held joined in) and prints each row as it arrives (a table measures its first %d rows), "+
		"with jit off, its search_path and the default statement_timeout of 30s; "+
		"psql runs the same statement. %d timed runs each, alternately, after one untimed run.\n\n",
		workers.DefaultStreamBatchSize, output.DefaultProbeRows, o.ListRuns)
	b.printf("| listing | rows | attunectl median (min) | peak RSS | psql median (min) | psql peak RSS | ratio |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, format := range []string{"name", "table", "json"} {
		q, args := workers.StreamQuery(workers.ListOptions{}, listFields[format])
		sql := inline(q, args)
		res, err := b.timeAlternately(ctx, o.ListRuns, b.attunectlCmd(ctx, "worker", "list", "-o", format), func() *exec.Cmd { return b.psql(ctx, sql) })
		if err != nil {
			return err
		}
		s, p := res[0], res[1]
		b.printf("| `attunectl worker list -o %s` | %d | %s (%s) | %s | %s (%s) | %s | %.2f |\n", format, o.Rows,
			ms(s.median()), ms(slices.Min(s.d)), mib(s.maxRSS()), ms(p.median()), ms(slices.Min(p.d)), mib(p.maxRSS()),
			float64(s.median())/float64(p.median()))
	}
	b.printf("\n")
	return b.runtimeBench(ctx)
}

// listFields are the fields attunectl's worker list reads for each format
// (pkg/cli's workerFields).
// listFields are the fields attunectl's stream reads for each format, as
// pkg/cli's workerFields chooses them for a listing without colour (the
// benchmark's: NO_COLOR, output to a file), which does not read the
// heartbeat interval (FieldLate): psql must run that very statement.
var listFields = map[string]workers.Fields{
	"name":  workers.FieldsName,
	"table": workers.FieldsTable&^workers.FieldLate | workers.FieldPlacement,
	"json":  workers.FieldsJSON | workers.FieldPlacement,
}

// attunectlCmd runs attunectl with args on the bench's schema, colour off.
func (b *bench) attunectlCmd(ctx context.Context, args ...string) func() *exec.Cmd {
	return b.binaryCmd(ctx, b.o.Attunectl, args...)
}

// binaryCmd runs the attunectl binary bin with args on the bench's schema,
// colour off.
func (b *bench) binaryCmd(ctx context.Context, bin string, args ...string) func() *exec.Cmd {
	env := append(os.Environ(), "ATTUNE__DATABASE__URL="+b.url, "ATTUNE__DATABASE__SCHEMA="+b.o.Schema, "NO_COLOR=1")
	return func() *exec.Cmd {
		c := exec.CommandContext(ctx, bin, args...)
		c.Env = env
		return c
	}
}

// runtimeBench times `worker list --runtime ruby` (1%% of the fleet) with
// the GIN index of migration 00012 and without it (today's plan: every row
// read), through attunectl's binary (List, today's printers), the
// streaming path and psql; then measures the HOT share of heartbeats
// without the index, and builds it again.
func (b *bench) runtimeBench(ctx context.Context) error {
	o := b.o
	opts := workers.ListOptions{Selector: workers.Selector{Runtime: "ruby"}}
	q, args := workers.StreamQuery(opts, listFields["table"])
	streamSQL := inline(q, args)
	attunectl := b.attunectlCmd(ctx, "worker", "list", "--runtime", "ruby")
	cmds := []func() *exec.Cmd{attunectl, func() *exec.Cmd { return b.psql(ctx, streamSQL) }}
	titles := []string{"`attunectl worker list --runtime ruby`", "psql, the same statement"}
	if o.Before != "" {
		cmds = append(cmds, b.binaryCmd(ctx, o.Before, "worker", "list", "--runtime", "ruby"))
		titles = append(titles, "attunectl before the runtime index (ca0e4ed) (`--before`), same command")
	}
	var n int64
	if err := b.pool.QueryRow(ctx, "SELECT count(*) FROM ("+streamSQL+") s").Scan(&n); err != nil {
		return err
	}
	with, err := b.timeAlternately(ctx, o.Runs, cmds...)
	if err != nil {
		return err
	}
	planWith, err := b.explain(ctx, streamSQL)
	if err != nil {
		return err
	}
	if err := b.exec(ctx, "DROP INDEX idx_worker_capabilities_runtimes"); err != nil {
		return err
	}
	without, err := b.timeAlternately(ctx, o.Runs, cmds...)
	if err != nil {
		return err
	}
	planWithout, err := b.explain(ctx, streamSQL)
	if err != nil {
		return err
	}
	b.printf("### worker list --runtime ruby: %d of %d workers\n\n", n, o.Rows)
	b.printf("| command | with idx_worker_capabilities_runtimes, median (min) | without, median (min) | without / with |\n|---|---:|---:|---:|\n")
	for i, t := range titles {
		b.printf("| %s | %s (%s) | %s (%s) | %.2f |\n", t, ms(with[i].median()), ms(slices.Min(with[i].d)),
			ms(without[i].median()), ms(slices.Min(without[i].d)), float64(without[i].median())/float64(with[i].median()))
	}
	if o.Before != "" {
		b.printf("\nattunectl with the index against attunectl before the runtime index (ca0e4ed) without it (as it ran then): %.1f× faster "+
			"(%s → %s, medians of the same run).", float64(without[2].median())/float64(with[0].median()),
			ms(without[2].median()), ms(with[0].median()))
	}
	b.printf(" Server time (EXPLAIN ANALYZE of the statement): %s with the index, %s without.\n\n",
		executionTime(planWith), executionTime(planWithout))
	b.printf("EXPLAIN with the index:\n\n```\n%s```\n\nEXPLAIN without:\n\n```\n%s```\n\n", planWith, planWithout)
	if err := b.hotBench(ctx, "the migrations' without idx_worker_capabilities_runtimes (before migration 00012)"); err != nil {
		return err
	}
	begin := time.Now()
	if err := b.exec(ctx, "CREATE INDEX idx_worker_capabilities_runtimes ON worker USING gin ((capabilities->'runtimes'))"); err != nil {
		return err
	}
	b.printf("Building idx_worker_capabilities_runtimes again on %d rows took %s.\n\n", o.Rows, ms(time.Since(begin)))
	return nil
}

// executionTime is the "Execution Time" line of an EXPLAIN ANALYZE.
func executionTime(plan string) string {
	for _, l := range strings.Split(plan, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "Execution Time:") {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "Execution Time:"))
		}
	}
	return "?"
}
