// Command eventbench measures the event path of a sensor worker, for the
// figures the README publishes:
//
//   - events accepted per second by one worker's loopback endpoint, from one
//     sensor and from 20 sensors posting as fast as they can (each sensor is
//     one HTTP client, as a sensor process is), with the p50/p99 latency of
//     an accepted POST; every event goes through the fenced insert of
//     pkg/events in its own transaction;
//   - the p99 of a worker heartbeat (the statement of pkg/workers) on its
//     own connection once a second, without and with that event load;
//   - the resident memory of a supervisor running 100 built-in interval
//     timers (1 s) for a while.
//
// Without --database-url it starts a PostgreSQL server of its own
// (pkg/embeddedpg, durable settings unless --ephemeral) in a temporary
// directory and removes it at the end.
//
//	go run ./cmd/eventbench
//	go run ./cmd/eventbench --seconds 20 --sensors 1,20
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/events"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

type options struct {
	URL       string
	Schema    string
	Seconds   int
	Sensors   string
	Timers    int
	TimerSecs int
	Ephemeral bool
	PoolSize  int
	Writer    string
	Async     bool
}

func main() {
	var o options
	flag.StringVar(&o.URL, "database-url", "", "PostgreSQL URL to benchmark on (default: start a server of its own)")
	flag.StringVar(&o.Schema, "schema", "eventbench", "schema to work in: dropped first and at the end")
	flag.IntVar(&o.Seconds, "seconds", 15, "length of each event-load run")
	flag.StringVar(&o.Sensors, "sensors", "1,20", "comma-separated numbers of concurrently posting sensors")
	flag.IntVar(&o.Timers, "timers", 100, "built-in timers for the memory figure")
	flag.IntVar(&o.TimerSecs, "timer-seconds", 30, "how long the timers run before memory is read")
	flag.BoolVar(&o.Ephemeral, "ephemeral", false, "start the embedded server with fsync off (not durable)")
	flag.IntVar(&o.PoolSize, "pool", 20, "connections of the worker's pool")
	flag.StringVar(&o.Writer, "writer", "batch", "event writer: batch (group commit, what sensor run uses) or single (one transaction per event)")
	flag.BoolVar(&o.Async, "async", false, "batches commit with synchronous_commit off (sensor.event_commit: async)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "eventbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	url := o.URL
	if url == "" {
		u, stopServer, err := startServer(ctx, o)
		if err != nil {
			return err
		}
		defer stopServer()
		url = u
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting: %w", database.RedactError(err))
	}
	defer admin.Close(context.Background())
	schema := pgx.Identifier{o.Schema}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") //nolint:errcheck
	db, err := database.Open(ctx, database.Options{URL: url, Schema: o.Schema, MaxConns: int32(o.PoolSize)})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := database.MigrateUp(ctx, db); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	fmt.Printf("eventbench: %d cores, GOMAXPROCS %d, %s runs, server fsync: %v, writer: %s, async commit: %v\n", runtime.NumCPU(), runtime.GOMAXPROCS(0),
		time.Duration(o.Seconds)*time.Second, !o.Ephemeral, o.Writer, o.Async)

	counts := []int{}
	for _, s := range strings.Split(o.Sensors, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--sensors %q: want numbers like 1,20", o.Sensors)
		}
		counts = append(counts, n)
	}
	maxSensors := slices.Max(counts)
	fx, err := setup(ctx, db.Pool, max(maxSensors, o.Timers))
	if err != nil {
		return fmt.Errorf("setting up sensors: %w", err)
	}

	// Heartbeat alone.
	idle := heartbeats(ctx, url, o.Schema, fx.worker, time.Duration(o.Seconds)*time.Second, nil)
	fmt.Printf("heartbeat, no event load:       n=%d p50 %s p99 %s max %s\n", len(idle), pct(idle, 50), pct(idle, 99), pct(idle, 100))

	for _, n := range counts {
		if err := eventLoad(ctx, o, url, db.Pool, fx, n); err != nil {
			return err
		}
	}
	return timersMemory(ctx, o, db.Pool, fx)
}

type fixture struct {
	worker   int64
	fences   []supervise.Fence
	sensors  []int64
	triggers []supervise.Trigger
}

const instance = "00000000-0000-4000-8000-0000000000be"

func setup(ctx context.Context, pool *pgxpool.Pool, n int) (fixture, error) {
	var fx fixture
	err := pool.QueryRow(ctx, `INSERT INTO worker (name, worker_type, worker_role, status, last_heartbeat, capabilities)
		VALUES ('eventbench', 'local', 'sensor', 'active', now(), '{"runtimes": ["python"]}') RETURNING id`).Scan(&fx.worker)
	if err != nil {
		return fx, err
	}
	for i := range n {
		ref := fmt.Sprintf("bench.s%d", i)
		var sid, tid, wl int64
		if err := pool.QueryRow(ctx, `INSERT INTO sensor (ref, pack_ref, label, entrypoint, runtime, runtime_ref, enabled)
			SELECT $1, 'bench', $1, 'interval', id, ref, true FROM runtime WHERE ref = 'core.sensor.builtin' RETURNING id`, ref).Scan(&sid); err != nil {
			return fx, err
		}
		if err := pool.QueryRow(ctx, `INSERT INTO trigger (ref, pack_ref, label, sensor, sensor_ref) VALUES ($1, 'bench', $1, $2, $3) RETURNING id`,
			fmt.Sprintf("bench.t%d", i), sid, ref).Scan(&tid); err != nil {
			return fx, err
		}
		if err := pool.QueryRow(ctx, `INSERT INTO sensor_workload (sensor, workload_key) VALUES ($1, 'default') RETURNING id`, sid).Scan(&wl); err != nil {
			return fx, err
		}
		if _, err := pool.Exec(ctx, `INSERT INTO sensor_workload_assignment (workload, worker, worker_instance, generation, lease_expires_at, assigned_at, renewed_at)
			VALUES ($1, $2, $3, 1, now() + interval '1 day', now(), now())`, wl, fx.worker, instance); err != nil {
			return fx, err
		}
		fx.sensors = append(fx.sensors, sid)
		fx.triggers = append(fx.triggers, supervise.Trigger{ID: tid, Ref: fmt.Sprintf("bench.t%d", i), TriggerRef: fmt.Sprintf("bench.t%d", i)})
		fx.fences = append(fx.fences, supervise.Fence{Workload: wl, Worker: fx.worker, Instance: instance, Generation: 1})
	}
	return fx, nil
}

// heartbeats runs the worker's heartbeat once a second on a connection of
// its own for d and returns the latencies; ready is closed once it runs.
func heartbeats(ctx context.Context, url, schema string, worker int64, d time.Duration, ready chan<- struct{}) []time.Duration {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize() + ", public"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventbench: heartbeat connection:", database.RedactError(err))
		return nil
	}
	defer conn.Close(context.Background())
	if ready != nil {
		close(ready)
	}
	var out []time.Duration
	end := time.Now().Add(d)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		begin := time.Now()
		// The heartbeat of pkg/workers: one UPDATE by id, asynchronous commit.
		tx, err := conn.Begin(ctx)
		if err == nil {
			_, err = tx.Exec(ctx, "SET LOCAL synchronous_commit = off")
		}
		if err == nil {
			_, err = tx.Exec(ctx, `UPDATE worker SET last_heartbeat = now(), status = 'active' WHERE id = $1`, worker)
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "eventbench: heartbeat:", err)
			continue
		}
		out = append(out, time.Since(begin))
	}
	return out
}

func eventLoad(ctx context.Context, o options, url string, pool *pgxpool.Pool, fx fixture, n int) error {
	var writer supervise.EventWriter = events.Writer{Pool: pool}
	if o.Writer == "batch" {
		bw := events.NewBatchWriter(pool, 2, o.Async)
		defer bw.Close()
		writer = bw
	}
	ep := supervise.NewEndpoint(writer, supervise.EndpointOptions{RatePerSecond: 1e9, Burst: 1 << 30,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := ep.Start(); err != nil {
		return err
	}
	defer ep.Close(context.Background())
	d := time.Duration(o.Seconds) * time.Second
	var hb []time.Duration
	hbDone := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(hbDone)
		hb = heartbeats(ctx, url, o.Schema, fx.worker, d, ready)
	}()
	<-ready

	var accepted, refused atomic.Int64
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	start := time.Now()
	for i := range n {
		tok := ep.Grant(fx.fences[i], fx.sensors[i], fmt.Sprintf("bench.s%d", i), []supervise.Trigger{fx.triggers[i]})
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			seq := 0
			for time.Now().Before(end) && ctx.Err() == nil {
				seq++
				body, _ := json.Marshal(map[string]any{"trigger_ref": fx.triggers[i].TriggerRef, "payload": map[string]any{"n": seq}})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL()+"/events", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				begin := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					refused.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					accepted.Add(1)
					lat[i] = append(lat[i], time.Since(begin))
				} else {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	<-hbDone
	all := slices.Concat(lat...)
	fmt.Printf("events, %2d sensor(s): %d accepted in %s = %.0f/s, refused %d, accept p50 %s p99 %s max %s\n",
		n, accepted.Load(), elapsed.Round(time.Millisecond), float64(accepted.Load())/elapsed.Seconds(), refused.Load(),
		pct(all, 50), pct(all, 99), pct(all, 100))
	fmt.Printf("heartbeat under that load:      n=%d p50 %s p99 %s max %s\n", len(hb), pct(hb, 50), pct(hb, 99), pct(hb, 100))
	return nil
}

func timersMemory(ctx context.Context, o options, pool *pgxpool.Pool, fx fixture) error {
	before := rssKiB()
	sup := supervise.New(nil, events.NewStore(pool, nil), nil, supervise.Options{})
	var as []supervise.Assignment
	for i := range o.Timers {
		as = append(as, supervise.Assignment{Fence: fx.fences[i], Sensor: supervise.Sensor{
			ID: fx.sensors[i], Ref: fmt.Sprintf("bench.s%d", i), RuntimeRef: supervise.BuiltinRuntimeRef,
			Entrypoint: supervise.BuiltinInterval, Config: map[string]any{"interval_seconds": 1.0},
			Triggers: []supervise.Trigger{fx.triggers[i]}}})
	}
	var n0 int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM event").Scan(&n0); err != nil {
		return err
	}
	sup.Reconcile(ctx, as)
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(o.TimerSecs) * time.Second):
	}
	after := rssKiB()
	sup.StopAll()
	var n1 int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM event").Scan(&n1); err != nil {
		return err
	}
	fmt.Printf("%d built-in timers (1 s) for %ds: %d events, process RSS %.1f MiB (%.1f MiB before the timers)\n",
		o.Timers, o.TimerSecs, n1-n0, float64(after)/1024, float64(before)/1024)
	return nil
}

func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "-"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return s[i].Round(10 * time.Microsecond).String()
}

func startServer(ctx context.Context, o options) (string, func(), error) {
	root, err := os.MkdirTemp("/tmp", "ebench-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return "", nil, err
	}
	srv, err := embeddedpg.Start(ctx, embeddedpg.Options{
		DataDir: filepath.Join(root, "data"), Ephemeral: o.Ephemeral, Foreground: true,
		Settings: map[string]string{"max_connections": "100", "shared_buffers": "256MB"},
	})
	if err != nil {
		os.RemoveAll(root)
		return "", nil, fmt.Errorf("starting a PostgreSQL server for the benchmark: %w (or pass --database-url)", err)
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Stop(sctx)
		os.RemoveAll(root)
	}
	return srv.ConnString(embeddedpg.DefaultDatabase), stop, nil
}
