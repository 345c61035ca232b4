// Command eventbench measures the event path of a sensor worker, for the
// figures `attunectl help performance` publishes (cmd/eventbench/RESULTS.md has them in full):
//
//	eventbench [events]  events accepted per second by one worker's loopback
//	                     endpoint from 1 and 20 sensors posting as fast as they
//	                     can (each sensor one HTTP client, as a sensor process
//	                     is), with the p50/p99 latency of an accepted POST,
//	                     through the BatchWriter and endpoint settings `sensor
//	                     run` uses (pool of database.max_connections = 4, one
//	                     of them held by the placement LISTEN, rate limit
//	                     10,000/s per sensor), durable and async commit, each
//	                     configuration --runs times (medians); and the p99 of
//	                     the worker's heartbeat statement (pkg/workers) on
//	                     the same pool, without and with that load.
//	eventbench handoff   the gap of a drain between two real `attunectl sensor
//	                     run` processes handing a Python sensor over.
//	eventbench rss       the resident memory of a real `sensor run` process
//	                     with no sensors and with 100 built-in 1 s timers.
//
// Without --database-url it starts a PostgreSQL server of its own
// (pkg/embeddedpg, durable settings unless --ephemeral) in a temporary
// directory and removes it at the end. handoff and rss build attunectl
// (go build ./cmd/attunectl) unless --attunectl names a binary: run them
// from the repository root.
//
//	go run ./cmd/eventbench --seconds 10 --runs 3
//	go run ./cmd/eventbench handoff --rounds 7
//	go run ./cmd/eventbench rss --wait 60s
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
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/events"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/supervise"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// common are the flags of every mode.
type common struct {
	URL       string
	Schema    string
	Ephemeral bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "database-url", "", "PostgreSQL URL to benchmark on (default: start a server of its own)")
	fs.StringVar(&c.Schema, "schema", "eventbench", "schema to work in: dropped first and at the end")
	fs.BoolVar(&c.Ephemeral, "ephemeral", false, "start the embedded server with fsync off (not durable)")
}

// server returns the URL to work on, starting a server when none is given.
func (c *common) server(ctx context.Context) (string, func(), error) {
	if c.URL != "" {
		return c.URL, func() {}, nil
	}
	return startServer(ctx, c.Ephemeral)
}

type options struct {
	common
	Seconds    int
	Sensors    string
	Commits    string
	Runs       int
	PoolSize   int
	Rate       int
	Writer     string
	CPUProfile string
	NoListen   bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mode, args := "events", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	var err error
	switch mode {
	case "events":
		err = eventsMode(ctx, args)
	case "handoff":
		err = handoff(ctx, args)
	case "rss":
		err = rss(ctx, args)
	default:
		err = fmt.Errorf("unknown mode %q (want events, handoff or rss)", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventbench:", err)
		os.Exit(1)
	}
}

// result is one event-load run.
type result struct {
	rate                float64
	accepted, refused   int64
	p50, p99, max       time.Duration
	hbN                 int
	hbP50, hbP99, hbMax time.Duration
}

func eventsMode(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("eventbench events", flag.ExitOnError)
	o.common.register(fs)
	fs.IntVar(&o.Seconds, "seconds", 10, "length of each event-load run")
	fs.StringVar(&o.Sensors, "sensors", "1,20", "comma-separated numbers of concurrently posting sensors")
	fs.StringVar(&o.Commits, "commit", "durable,async", "comma-separated commit settings to run (sensor.events.commit: durable, async)")
	fs.IntVar(&o.Runs, "runs", 3, "runs of each configuration (the summary shows medians)")
	fs.IntVar(&o.PoolSize, "pool", 4, "connections of the worker's pool (database.max_connections; sensor run's default is 4)")
	fs.IntVar(&o.Rate, "rate", 10000, "events per second one sensor may post (sensor.events.rate_limit; default 10000)")
	fs.StringVar(&o.Writer, "writer", "batch", "event writer: batch (group commit, what sensor run uses) or single (one transaction per event)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the event-load runs (worker and clients: one process) to this file")
	fs.BoolVar(&o.NoListen, "no-listen", false, "do not hold a pool connection in LISTEN as sensor run does (to measure what the LISTEN costs)")
	_ = fs.Parse(args)

	var commits []string
	for _, c := range strings.Split(o.Commits, ",") {
		c = strings.TrimSpace(c)
		if c != "durable" && c != "async" {
			return fmt.Errorf("--commit %q: want durable, async or both (durable,async)", o.Commits)
		}
		commits = append(commits, c)
	}
	counts := []int{}
	for _, s := range strings.Split(o.Sensors, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--sensors %q: want numbers like 1,20", o.Sensors)
		}
		counts = append(counts, n)
	}
	url, stopServer, err := o.server(ctx)
	if err != nil {
		return err
	}
	defer stopServer()
	db, drop, err := migrated(ctx, url, o.Schema, o.PoolSize)
	if err != nil {
		return err
	}
	defer drop()
	fmt.Printf("eventbench: %d cores, GOMAXPROCS %d, %s runs ×%d, server fsync: %v, writer: %s, pool %d, rate limit %d/s per sensor, placement LISTEN: %v; load average %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Duration(o.Seconds)*time.Second, o.Runs, !o.Ephemeral, o.Writer, o.PoolSize, o.Rate, !o.NoListen, loadavg())

	fx, err := setup(ctx, db.Pool, slices.Max(counts))
	if err != nil {
		return fmt.Errorf("setting up sensors: %w", err)
	}
	// sensor run holds one connection of its pool for LISTEN (placement).
	lctx, cancelListen := context.WithCancel(ctx)
	defer cancelListen()
	if !o.NoListen {
		if _, err := placement.Listen(lctx, db); err != nil {
			return err
		}
	}
	d := time.Duration(o.Seconds) * time.Second

	var idleP99 []time.Duration
	for r := range o.Runs {
		idle := heartbeats(ctx, db.Pool, fx.worker, d)
		idleP99 = append(idleP99, pct(idle, 99))
		fmt.Printf("heartbeat, no event load (run %d): n=%d p50 %s p99 %s max %s; load %s\n", r+1, len(idle),
			dur(pct(idle, 50)), dur(pct(idle, 99)), dur(pct(idle, 100)), loadavg())
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	type key struct {
		commit string
		n      int
	}
	all := map[key][]result{}
	for _, c := range commits {
		for _, n := range counts {
			for r := range o.Runs {
				res, err := eventLoad(ctx, o, db.Pool, fx, n, c == "async")
				if err != nil {
					return err
				}
				all[key{c, n}] = append(all[key{c, n}], res)
				fmt.Printf("%-7s %2d sensor(s), run %d: %d accepted = %.0f/s, refused %d, accept p50 %s p99 %s max %s; heartbeat n=%d p99 %s max %s; load %s\n",
					c, n, r+1, res.accepted, res.rate, res.refused, dur(res.p50), dur(res.p99), dur(res.max),
					res.hbN, dur(res.hbP99), dur(res.hbMax), loadavg())
			}
		}
	}
	fmt.Printf("\nmedians of %d runs of %s (load average now %s):\n", o.Runs, d, loadavg())
	fmt.Printf("heartbeat p99 without event load: %s\n", dur(median(idleP99)))
	fmt.Println("| commit | sensors | events/s | accept p99 | heartbeat p99 under load |")
	fmt.Println("|---|---|---|---|---|")
	for _, c := range commits {
		for _, n := range counts {
			rs := all[key{c, n}]
			var rates []float64
			var p99, hb []time.Duration
			for _, r := range rs {
				rates = append(rates, r.rate)
				p99 = append(p99, r.p99)
				hb = append(hb, r.hbP99)
			}
			slices.Sort(rates)
			fmt.Printf("| %s | %d | %.0f | %s | %s |\n", c, n, rates[len(rates)/2], dur(median(p99)), dur(median(hb)))
		}
	}
	return nil
}

type fixture struct {
	worker   int64
	fences   []fence.Fence
	sensors  []int64
	triggers []supervise.Trigger
}

const instance = "00000000-0000-4000-8000-0000000000be"

func setup(ctx context.Context, pool *pgxpool.Pool, n int) (fixture, error) {
	var fx fixture
	err := pool.QueryRow(ctx, `INSERT INTO worker (name, worker_type, worker_role, status, last_heartbeat, capabilities, meta)
		VALUES ('eventbench', 'local', 'sensor', 'active', now(), '{"runtimes": ["python"]}', jsonb_build_object('instance_id', $1::text)) RETURNING id`, instance).Scan(&fx.worker)
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
		fx.fences = append(fx.fences, fence.Fence{Workload: wl, Worker: fx.worker, Instance: instance, Generation: 1})
	}
	return fx, nil
}

// heartbeats sends the worker's heartbeat statement (pkg/workers) five
// times a second for d through the worker's pool, as `sensor run` does,
// and returns the latencies.
func heartbeats(ctx context.Context, pool *pgxpool.Pool, worker int64, d time.Duration) []time.Duration {
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
		var at time.Time
		if err := pool.QueryRow(ctx, workers.HeartbeatSQL(), worker, instance).Scan(&at); err != nil {
			fmt.Fprintln(os.Stderr, "eventbench: heartbeat:", err)
			continue
		}
		out = append(out, time.Since(begin))
	}
	return out
}

func eventLoad(ctx context.Context, o options, pool *pgxpool.Pool, fx fixture, n int, async bool) (result, error) {
	var writer supervise.EventWriter = events.Writer{Pool: pool}
	if o.Writer == "batch" {
		// As pkg/sensorworker starts it.
		bw := events.NewBatchWriter(&database.DB{Pool: pool}, 2, async)
		defer bw.Close()
		writer = bw
	}
	ep := supervise.NewEndpoint(writer, supervise.EndpointOptions{RatePerSecond: float64(o.Rate), Burst: o.Rate,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := ep.Start(); err != nil {
		return result{}, err
	}
	defer ep.Close(context.Background())
	d := time.Duration(o.Seconds) * time.Second
	var hb []time.Duration
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		hb = heartbeats(ctx, pool, fx.worker, d)
	}()

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
			defer client.CloseIdleConnections()
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
	lats := slices.Concat(lat...)
	return result{rate: float64(accepted.Load()) / elapsed.Seconds(), accepted: accepted.Load(), refused: refused.Load(),
		p50: pct(lats, 50), p99: pct(lats, 99), max: pct(lats, 100),
		hbN: len(hb), hbP50: pct(hb, 50), hbP99: pct(hb, 99), hbMax: pct(hb, 100)}, nil
}

// pct is the p-th percentile of d (nearest rank); 0 when d is empty.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return s[i]
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Microsecond).String()
}

func startServer(ctx context.Context, ephemeral bool) (string, func(), error) {
	root, err := os.MkdirTemp("/tmp", "ebench-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return "", nil, err
	}
	srv, err := embeddedpg.Start(ctx, embeddedpg.Options{
		DataDir: filepath.Join(root, "data"), Ephemeral: ephemeral, Foreground: true,
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
