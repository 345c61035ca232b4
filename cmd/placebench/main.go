// Command placebench measures sensor placement at scale, in one process:
// N simulated sensor workers (each a registered worker row with its own
// instance, each calling placement.Tick once per heartbeat interval with
// the heartbeat folded into the renewal) share S sensors on one PostgreSQL.
//
// It reports:
//   - the time until every sensor is assigned and the load is balanced
//     (every worker within one of the mean);
//   - statements per second in steady state, against the goal of about one
//     per worker per heartbeat;
//   - when --kill workers die at once (they stop ticking, releasing
//     nothing), the time until every orphan is owned again by a live
//     worker, from the deaths and from the last of their leases lapsing
//     (goal: within 1 s of the lapse), and the number of sampled instants at
//     which two workers held the same sensor under unexpired leases (and
//     overlapping spans in the ledger);
//   - the cost of `sensor list` over all sensors (sensors.List, the
//     statement plus the derivation) against psql -X -A -t running the
//     same statement.
//
// Without --database-url it starts a throwaway PostgreSQL of its own
// (pkg/embeddedpg; --durable for fsync on).
//
//	go run ./cmd/placebench                                   # 10,000 sensors, 1,000 workers, 2 s interval
//	go run ./cmd/placebench --workers 100 --sensors 1000 --interval 1s
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/sensors"
	"github.com/attune-automation/attunectl/pkg/workers"
)

type options struct {
	URL          string
	Workers      int
	Sensors      int
	Kill         int
	WakeOnLapse  bool
	Interval     time.Duration
	Steady       time.Duration
	Conns        int
	Capacity     int
	BalanceEvery int
	Budget       int
	Runs         int
	Psql         string
	Durable      bool
}

var verbose = flag.Bool("v", false, "print progress")

func main() {
	var o options
	flag.StringVar(&o.URL, "database-url", "", "PostgreSQL URL (default: start a throwaway server); the schema placebench is dropped and recreated")
	flag.IntVar(&o.Workers, "workers", 1000, "simulated sensor workers")
	flag.IntVar(&o.Sensors, "sensors", 10000, "sensors")
	flag.IntVar(&o.Kill, "kill", 100, "workers that die at once")
	flag.BoolVar(&o.WakeOnLapse, "wake-on-lapse", true, "tick just after another worker's lease lapses, as the sensor service does (false: heartbeat ticks only)")
	flag.DurationVar(&o.Interval, "interval", 2*time.Second, "heartbeat interval (leases last three)")
	flag.DurationVar(&o.Steady, "steady", 20*time.Second, "how long to measure the steady state")
	flag.IntVar(&o.Conns, "connections", 16, "connections shared by all simulated workers")
	flag.IntVar(&o.Capacity, "capacity", 20, "max_concurrent_sensors of each worker")
	flag.IntVar(&o.BalanceEvery, "balance-every", 5, "ticks between balance checks")
	flag.IntVar(&o.Budget, "budget", 2, "handoffs per worker per balance check")
	flag.IntVar(&o.Runs, "runs", 7, "runs of the sensor-list comparison")
	flag.StringVar(&o.Psql, "psql", "psql", "psql binary")
	flag.BoolVar(&o.Durable, "durable", false, "fsync on for the throwaway server")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "placebench:", err)
		os.Exit(1)
	}
}

type sim struct {
	o      options
	db     *database.DB
	url    string
	ws     []*simWorker
	stmts  atomic.Int64
	errors atomic.Int64
}

type simWorker struct {
	name   string
	id     int64
	p      *placement.Placer
	cancel context.CancelFunc
	dead   atomic.Bool
}

func run(ctx context.Context, o options) error {
	url := o.URL
	if url == "" {
		root, err := os.MkdirTemp("/tmp", "pbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(root)
		_ = os.Chmod(root, 0o755)
		srv, err := embeddedpg.Start(ctx, embeddedpg.Options{
			DataDir: filepath.Join(root, "data"), Ephemeral: !o.Durable, Foreground: true,
			Settings: map[string]string{"max_connections": strconv.Itoa(o.Conns + 40), "shared_buffers": "256MB"},
		})
		if err != nil {
			return fmt.Errorf("starting PostgreSQL: %w (or pass --database-url)", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = srv.Stop(sctx)
		}()
		url = srv.ConnString(embeddedpg.DefaultDatabase)
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, "DROP SCHEMA IF EXISTS placebench CASCADE; CREATE SCHEMA placebench")
	admin.Close(ctx)
	if err != nil {
		return err
	}
	db, err := database.Open(ctx, database.Options{URL: url, Schema: "placebench", MaxConns: int32(o.Conns)})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := database.MigrateUp(ctx, db); err != nil {
		return err
	}
	s := &sim{o: o, db: db, url: url}
	fmt.Printf("placebench: %d sensors, %d workers, interval %s (lease %s), %d connections, capacity %d, balance every %d ticks, budget %d, fsync %v\n",
		o.Sensors, o.Workers, o.Interval, 3*o.Interval, o.Conns, o.Capacity, o.BalanceEvery, o.Budget, o.Durable)
	if err := s.setup(ctx); err != nil {
		return err
	}
	return s.phases(ctx)
}

func (s *sim) setup(ctx context.Context) error {
	begin := time.Now()
	_, err := s.db.Pool.Exec(ctx, `
		INSERT INTO sensor (ref, pack_ref, label, entrypoint, runtime, runtime_ref, enabled)
		SELECT 'bench.s' || lpad(g::text, 6, '0'), 'bench', 's' || g, 's.sh', r.id, r.ref, true
		FROM generate_series(1, $1) g, runtime r WHERE r.ref = 'core.sensor.shell'`, s.o.Sensors)
	if err != nil {
		return fmt.Errorf("creating sensors: %w", err)
	}
	if _, err := sensors.EnsureWorkloads(ctx, s.db); err != nil {
		return err
	}
	for i := 0; i < s.o.Workers; i++ {
		name := fmt.Sprintf("bench-w%04d", i)
		inst := workers.Instance{ID: rand.Text(), PID: 1, StartedAt: time.Now().UTC(), Hostname: name, Version: "bench"}
		reg := workers.NewRegistration(s.db, workers.RegistrationConfig{Name: name, Host: name, Instance: inst,
			Capabilities: workers.Capabilities{Runtimes: []string{"shell"}, MaxConcurrentSensors: s.o.Capacity,
				SensorVersion: "bench", HeartbeatInterval: s.o.Interval.Seconds()}})
		if _, err := reg.Register(ctx, workers.RegisterOptions{}); err != nil {
			return err
		}
		p := placement.New(s.db, placement.Config{WorkerID: reg.ID(), InstanceID: inst.ID, Interval: s.o.Interval,
			Heartbeat: true, BalanceEvery: s.o.BalanceEvery, Budget: s.o.Budget})
		s.ws = append(s.ws, &simWorker{name: name, id: reg.ID(), p: p})
	}
	fmt.Printf("setup: %d sensors and %d registered workers in %s\n", s.o.Sensors, s.o.Workers, time.Since(begin).Round(time.Millisecond))
	return nil
}

// start runs every worker's loop, each at its own phase of the interval.
// A release notification is not used here: 1,000 LISTEN connections are
// not what a transaction pooler gives, so claims wait for the tick.
func (s *sim) start(ctx context.Context) {
	for i, w := range s.ws {
		wctx, cancel := context.WithCancel(ctx)
		w.cancel = cancel
		phase := time.Duration(int64(s.o.Interval) * int64(i) / int64(len(s.ws)))
		go func() {
			select {
			case <-wctx.Done():
				return
			case <-time.After(phase):
			}
			t := time.NewTicker(s.o.Interval)
			defer t.Stop()
			for {
				h, err := w.p.Tick(wctx)
				s.stmts.Add(int64(h.Statements))
				if err != nil && wctx.Err() == nil {
					if s.errors.Add(1) <= 3 {
						fmt.Fprintf(os.Stderr, "placebench: tick of %s: %v\n", w.name, err)
					}
				}
				// As the sensor service does: once more just after another
				// worker's lease lapses, or soon after a claim lost sensors.
				var soon <-chan time.Time
				if d, ok := h.Sooner(s.o.Interval); ok && s.o.WakeOnLapse {
					soon = time.After(d)
				}
				select {
				case <-wctx.Done():
					return
				case <-t.C:
				case <-soon:
				}
			}
		}()
	}
}

// state reads how many sensors are owned by live placers and the loads.
func (s *sim) state(ctx context.Context, live map[int64]bool) (owned int, minLoad, maxLoad int, err error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT worker, count(*) FROM sensor_workload_assignment
		WHERE worker IS NOT NULL AND `+fence.Live+` GROUP BY worker`)
	if err != nil {
		return 0, 0, 0, err
	}
	loads := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return 0, 0, 0, err
		}
		loads[id] = n
	}
	rows.Close()
	minLoad, maxLoad = 1<<30, 0
	for id := range live {
		n := loads[id]
		owned += n
		minLoad, maxLoad = min(minLoad, n), max(maxLoad, n)
	}
	return owned, minLoad, maxLoad, rows.Err()
}

func (s *sim) liveSet() map[int64]bool {
	m := map[int64]bool{}
	for _, w := range s.ws {
		if !w.dead.Load() {
			m[w.id] = true
		}
	}
	return m
}

// sampler counts instants at which two placers hold one workload under
// unexpired leases.
func (s *sim) sampler(ctx context.Context, samples, doubles *atomic.Int64) {
	// A placer's snapshot is read at its own instant; two leases of one
	// workload are two owners at once only if both were unexpired at the
	// later of the two reads.
	for ctx.Err() == nil {
		seen := make(map[int64]time.Time, s.o.Sensors)
		double := false
		for _, w := range s.ws {
			read := time.Now()
			for _, l := range w.p.Held() {
				if !l.ExpiresAt.After(read) {
					continue
				}
				if exp, dup := seen[l.Workload]; dup && exp.After(read) {
					double = true
				}
				seen[l.Workload] = l.ExpiresAt
			}
		}
		samples.Add(1)
		if double {
			doubles.Add(1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *sim) phases(ctx context.Context) error {
	o := s.o
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var samples, doubles atomic.Int64
	go s.sampler(runCtx, &samples, &doubles)

	// 1. Placement from nothing.
	begin := time.Now()
	s.start(runCtx)
	mean := float64(o.Sensors) / float64(o.Workers)
	var assignedAt time.Duration
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		owned, lo, hi, err := s.state(ctx, s.liveSet())
		if err != nil {
			return err
		}
		if owned == o.Sensors && assignedAt == 0 {
			assignedAt = time.Since(begin)
		}
		if owned == o.Sensors && float64(lo) >= mean-1 && float64(hi) <= mean+1 {
			break
		}
		if *verbose {
			fmt.Fprintf(os.Stderr, "placebench: %s owned %d, loads %d..%d, statements %d, errors %d\n",
				time.Since(begin).Round(100*time.Millisecond), owned, lo, hi, s.stmts.Load(), s.errors.Load())
		}
		if time.Since(begin) > 10*time.Minute {
			return fmt.Errorf("not balanced after 10 minutes: owned %d, loads %d..%d", owned, lo, hi)
		}
		time.Sleep(100 * time.Millisecond)
	}
	balancedAt := time.Since(begin)
	fmt.Printf("\n1. placement: all %d sensors assigned after %s; balanced (every worker within one of %.1f) after %s\n",
		o.Sensors, assignedAt.Round(10*time.Millisecond), mean, balancedAt.Round(10*time.Millisecond))

	// 2. Steady state.
	time.Sleep(2 * o.Interval)
	s0, e0 := s.stmts.Load(), s.errors.Load()
	var xact0 int64
	_ = s.db.Pool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&xact0)
	t0 := time.Now()
	time.Sleep(o.Steady)
	el := time.Since(t0).Seconds()
	st := float64(s.stmts.Load()-s0) / el
	var xact1 int64
	_ = s.db.Pool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&xact1)
	goal := float64(o.Workers) / o.Interval.Seconds()
	var moved int
	_ = s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor_ownership WHERE ended_at > now() - make_interval(secs => $1)`, el).Scan(&moved)
	fmt.Printf("2. steady state over %.0f s: %.0f placement statements/s for %d workers at %s = %.2f per worker per heartbeat (goal ~1; the heartbeat is folded in); server commits %.0f/s; tick errors %d; ownership changes %d\n",
		el, st, o.Workers, o.Interval, st/goal, float64(xact1-xact0)/el, s.errors.Load()-e0, moved)

	// 3. 100 workers die at once.
	orphans := map[int64]bool{}
	for _, w := range s.ws[:o.Kill] {
		for _, l := range w.p.Held() {
			orphans[l.Workload] = true
		}
	}
	killedAt := time.Now()
	for _, w := range s.ws[:o.Kill] {
		w.dead.Store(true)
		w.cancel()
	}
	ids := make([]int64, 0, len(orphans))
	for id := range orphans {
		ids = append(ids, id)
	}
	deadIDs := make([]int64, 0, o.Kill)
	for _, w := range s.ws[:o.Kill] {
		deadIDs = append(deadIDs, w.id)
	}
	// How long the orphans' leases still ran at the deaths (the database's
	// clock): failover is measured from the last lapse, since no worker may
	// claim a sensor under an unexpired lease.
	var lapseIn float64
	if err := s.db.Pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM max(lease_expires_at) - clock_timestamp())::float8, 0)
		FROM sensor_workload_assignment WHERE workload = ANY($1) AND worker = ANY($2)`, ids, deadIDs).Scan(&lapseIn); err != nil {
		return err
	}
	lapsed := time.Duration(lapseIn * float64(time.Second))
	var recovered time.Duration
	for {
		var left int
		err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor_workload_assignment
			WHERE workload = ANY($1) AND (worker IS NULL OR worker = ANY($2) OR lease_expires_at <= clock_timestamp())`, ids, deadIDs).Scan(&left)
		if err != nil {
			return err
		}
		if left == 0 {
			recovered = time.Since(killedAt)
			break
		}
		if *verbose && time.Since(killedAt) > lapsed-2*time.Second {
			var expiredN int
			_ = s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor_workload_assignment
				WHERE workload = ANY($1) AND worker IS NOT NULL AND lease_expires_at <= clock_timestamp()`, ids).Scan(&expiredN)
			fmt.Fprintf(os.Stderr, "placebench: %s after the deaths (%s after the last lapse): %d orphans unowned, %d under a lapsed lease\n",
				time.Since(killedAt).Round(10*time.Millisecond), (time.Since(killedAt) - lapsed).Round(10*time.Millisecond), left, expiredN)
		}
		if time.Since(killedAt) > 5*time.Minute {
			return fmt.Errorf("%d orphans still unowned after 5 minutes", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	grace := 3 * o.Interval
	fmt.Printf("3. %d of %d workers died at once holding %d sensors: every orphan owned again by a live worker %s after the deaths, %s after the last of their leases lapsed (grace %s; goal: within 1 s of the lapse)\n",
		o.Kill, o.Workers, len(orphans), recovered.Round(10*time.Millisecond), (recovered - lapsed).Round(10*time.Millisecond), grace)
	time.Sleep(2 * o.Interval)
	stopAll()
	time.Sleep(200 * time.Millisecond)
	var overlaps, expired int
	err := s.db.Pool.QueryRow(ctx, `
		SELECT count(*) FROM sensor_ownership x JOIN sensor_ownership y
		ON x.workload = y.workload AND x.id < y.id
		AND tstzrange(x.started_at, coalesce(x.ended_at, 'infinity')) && tstzrange(y.started_at, coalesce(y.ended_at, 'infinity'))`).Scan(&overlaps)
	if err != nil {
		return err
	}
	_ = s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM sensor_ownership WHERE end_reason = 'expired'`).Scan(&expired)
	fmt.Printf("   instants with two owners: %d of %d samples (every 20 ms, all placers' unexpired leases); overlapping ledger spans: %d; spans ended \"expired\": %d\n",
		doubles.Load(), samples.Load(), overlaps, expired)

	// 4. sensor list against psql.
	return s.listBench(ctx)
}

func (s *sim) listBench(ctx context.Context) error {
	if _, err := exec.LookPath(s.o.Psql); err != nil {
		return fmt.Errorf("psql not found: %w (pass --psql)", err)
	}
	q, _ := sensors.ListQuery(database.SchemaFacts{}, sensors.ListOptions{})
	var goList, goQuery, psqlT []time.Duration
	for i := -1; i < s.o.Runs; i++ {
		t := time.Now()
		l, err := sensors.List(ctx, s.db, sensors.ListOptions{})
		if err != nil {
			return err
		}
		if len(l.Sensors) != s.o.Sensors {
			return fmt.Errorf("sensor list returned %d sensors", len(l.Sensors))
		}
		d1 := time.Since(t)
		t = time.Now()
		rows, err := s.db.Pool.Query(ctx, q)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		d2 := time.Since(t)
		cmd := exec.CommandContext(ctx, s.o.Psql, "-X", "-A", "-t", "-q", "-d", s.url,
			"-c", "SET search_path = placebench, public", "-c", q)
		cmd.Stdout = nil
		t = time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("psql: %w: %s", err, out)
		}
		d3 := time.Since(t)
		if i >= 0 {
			goList, goQuery, psqlT = append(goList, d1), append(goQuery, d2), append(psqlT, d3)
		}
	}
	m := func(ds []time.Duration) time.Duration { slices.Sort(ds); return ds[len(ds)/2] }
	fmt.Printf("4. sensor list over %d sensors, medians of %d: sensors.List (statement + derivation) %s; the statement alone through pgx %s; psql -X -A -t on the same statement (process start included) %s; ratio List/psql %.2f\n",
		s.o.Sensors, s.o.Runs, m(goList).Round(100*time.Microsecond), m(goQuery).Round(100*time.Microsecond), m(psqlT).Round(100*time.Microsecond),
		float64(m(goList))/float64(m(psqlT)))
	return nil
}
