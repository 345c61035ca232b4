package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/version"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// run sets up the server and schema, registers the workers, heartbeats for
// o.Duration and returns the report. Progress goes to log.
func run(ctx context.Context, o options, log io.Writer) (*report, error) {
	url := o.URL
	if url == "" {
		u, stop, err := startServer(ctx, o, log)
		if err != nil {
			return nil, err
		}
		defer stop()
		url = u
	}
	if err := prepareSchema(ctx, o, url); err != nil {
		return nil, err
	}
	if !o.Keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := dropSchema(dctx, o, url); err != nil {
				fmt.Fprintf(log, "loadsim: dropping schema %q: %v\n", o.Schema, err)
			}
		}()
	}

	stats, err := database.Open(ctx, database.Options{URL: url, Schema: o.Schema, MaxConns: 2, AppName: "attunectl-loadsim-stats"})
	if err != nil {
		return nil, err
	}
	defer stats.Close()
	db, err := openPool(ctx, o, url)
	if err != nil {
		return nil, err
	}
	poolOpen := true
	defer func() {
		if poolOpen {
			db.Close()
		}
	}()

	rep := &report{Options: o, CPUs: runtime.NumCPU(), TargetPerSecond: float64(o.Workers) / o.Interval.Seconds()}
	if err := describeServer(ctx, stats, rep); err != nil {
		return nil, err
	}

	regs, took, err := registerAll(ctx, o, db, log)
	if err != nil {
		return nil, err
	}
	rep.RegisterSeconds = took.Seconds()
	rep.RegisterPerSecond = float64(o.Workers) / took.Seconds()
	fmt.Fprintf(log, "loadsim: registered %d workers in %s (%.0f/s)\n", o.Workers, took.Round(time.Millisecond), rep.RegisterPerSecond)

	// A session reports its statistics (its updates, and the WAL fsyncs its
	// commits did) lazily, up to seconds later, and at the latest when it
	// ends: end the registration's sessions, so that none of their work is
	// counted as the heartbeats', and heartbeat over fresh ones. The
	// Registrations hold db, so replacing its pool redirects them.
	fresh, err := openPool(ctx, o, url)
	if err != nil {
		return nil, err
	}
	db.Pool.Close()
	db.Pool = fresh.Pool
	start, err := settledSnapshot(ctx, stats)
	if err != nil {
		return nil, err
	}
	rep.Start = start
	rep.LoadAverage[0] = loadAverage()

	rec := newRecorder()
	elapsed, err := heartbeat(ctx, o, regs, rec, stats, log)
	if err != nil {
		return nil, err
	}
	// Closing the pool ends its sessions, which flushes their statistics.
	db.Close()
	poolOpen = false
	end, err := settledSnapshot(context.WithoutCancel(ctx), stats)
	if err != nil {
		return nil, err
	}
	rep.End = end
	rep.LoadAverage[1] = loadAverage()
	rep.finish(rec, elapsed)
	return rep, nil
}

// describeServer records the server's version and the settings that matter.
func describeServer(ctx context.Context, db *database.DB, rep *report) error {
	err := db.Pool.QueryRow(ctx, `
		SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('fsync'),
			coalesce((SELECT option_value FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), '100')
		FROM pg_class c WHERE c.oid = to_regclass('worker')`).
		Scan(&rep.Server.Version, &rep.Server.SynchronousCommit, &rep.Server.Fsync, &rep.Fillfactor)
	if err != nil {
		return fmt.Errorf("reading the server's settings: %w", database.RedactError(err))
	}
	rows, err := db.Pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'worker' ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("listing the worker table's indexes: %w", database.RedactError(err))
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		rep.Indexes = append(rep.Indexes, name)
	}
	rows.Close()
	return rows.Err()
}

// registerAll registers o.Workers workers through workers.Registration, o.Connections at a time.
func registerAll(ctx context.Context, o options, db *database.DB, log io.Writer) ([]*workers.Registration, time.Duration, error) {
	regs := make([]*workers.Registration, o.Workers)
	ver := version.String()
	for i := range regs {
		host := fmt.Sprintf("sim-host-%06d.loadsim.internal", i)
		inst := workers.NewInstance(ver)
		inst.Hostname = host
		regs[i] = workers.NewRegistration(db, workers.RegistrationConfig{
			Name: fmt.Sprintf("sensor-sim-%06d", i),
			Host: host,
			// What `sensor run` advertises on a host with every seeded runtime.
			Capabilities: workers.Capabilities{
				Runtimes:             []string{"built-in sensor", "native", "node.js", "python", "shell"},
				MaxConcurrentSensors: 10,
				SensorVersion:        ver,
				RuntimeVersions:      map[string]string{"python": "3.11.9", "node.js": "v20.11.1"},
				HeartbeatInterval:    o.Interval.Seconds(),
				DetectionSource:      "database",
			},
			Instance: inst,
		})
	}
	begin := time.Now()
	var next atomic.Int64
	var done atomic.Int64
	errs := make(chan error, o.Connections)
	var wg sync.WaitGroup
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				fmt.Fprintf(log, "loadsim: registering: %d of %d\n", done.Load(), o.Workers)
			}
		}
	}()
	for range o.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(regs) || ctx.Err() != nil {
					return
				}
				if _, err := regs[i].Register(ctx, workers.RegisterOptions{}); err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, fmt.Errorf("registering the simulated workers: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("registering the simulated workers: %w", err)
	}
	return regs, time.Since(begin), nil
}

// job is one scheduled heartbeat.
type job struct {
	worker int32
	at     time.Time
}

// heartbeat sends every worker's heartbeats on schedule for o.Duration.
// Worker i heartbeats at start + phase[i] + k*interval, its phase drawn at
// random in [0, interval): independent hosts started at different times.
// A dispatcher hands the due heartbeats to o.Connections senders; when they
// cannot keep up, heartbeats start late, and the report shows the lag.
func heartbeat(ctx context.Context, o options, regs []*workers.Registration, rec *recorder, stats *database.DB, log io.Writer) (time.Duration, error) {
	n := len(regs)
	rng := rand.New(rand.NewPCG(o.Seed, 0x10ad51))
	type slot struct {
		worker int32
		phase  time.Duration
	}
	slots := make([]slot, n)
	for i := range slots {
		slots[i] = slot{worker: int32(i), phase: time.Duration(rng.Int64N(int64(o.Interval)))}
	}
	sort.Slice(slots, func(a, b int) bool { return slots[a].phase < slots[b].phase })

	timeout := min(max(o.Interval, 2*time.Second), 15*time.Second) // as pkg/sensorworker bounds one heartbeat
	jobs := make(chan job, 4096)
	begin := time.Now()
	end := begin.Add(o.Duration)
	rec.begin(begin)

	go func() {
		defer close(jobs)
		for cycle := 0; ; cycle++ {
			base := begin.Add(time.Duration(cycle) * o.Interval)
			for _, s := range slots {
				at := base.Add(s.phase)
				if !at.Before(end) {
					return
				}
				if d := time.Until(at); d > time.Millisecond {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
				select {
				case jobs <- job{worker: s.worker, at: at}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	var wg sync.WaitGroup
	for range o.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				started := time.Now()
				if !started.Before(end) {
					// Due inside the window, but the senders reached it
					// only after the window closed: a missed heartbeat,
					// as late as it is now.
					rec.miss(started.Sub(j.at))
					continue
				}
				hctx, cancel := context.WithTimeout(ctx, timeout)
				_, err := regs[j.worker].Heartbeat(hctx)
				cancel()
				if ctx.Err() != nil {
					continue // interrupted: not a result
				}
				finished := time.Now()
				rec.add(finished.Sub(started), started.Sub(j.at), err, finished.Before(end))
			}
		}()
	}

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	var tick <-chan time.Time
	if o.ReportEvery > 0 {
		t := time.NewTicker(o.ReportEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-done:
			elapsed := time.Since(begin)
			if ctx.Err() != nil {
				fmt.Fprintf(log, "loadsim: interrupted after %s: reporting what was measured\n", elapsed.Round(time.Second))
			}
			return elapsed, nil
		case <-tick:
			w := rec.window()
			snap, err := takeSnapshot(ctx, stats)
			size := "?"
			if err == nil {
				size = fmt.Sprintf("table %s, indexes %s", mb(snap.TableBytes), mb(snap.IndexBytes))
			}
			fmt.Fprintf(log, "loadsim: %4.0fs  %6.0f hb/s  p50 %s  p99 %s  max %s  late p99 %s  errors %d  %s\n",
				time.Since(begin).Seconds(), w.perSecond, ms(w.p50), ms(w.p99), ms(w.max), ms(w.lagP99), w.errors, size)
		}
	}
}

// recorder collects latencies: all of them for the final percentiles, and
// the current window's for the progress lines.
type recorder struct {
	mu       sync.Mutex
	start    time.Time
	winStart time.Time
	win      []time.Duration
	winLag   []time.Duration
	winErrs  int
	all      []time.Duration
	lags     []time.Duration
	errs     map[string]int
	timeouts int
	// inWindow counts the heartbeats that completed inside the measured
	// window; outside those that completed after it; missed those due
	// inside it that never started in it.
	inWindow, outside, missed int
}

func newRecorder() *recorder { return &recorder{errs: map[string]int{}} }

func (r *recorder) begin(t time.Time) {
	r.mu.Lock()
	r.start, r.winStart = t, t
	r.mu.Unlock()
}

// miss records a heartbeat due in the window that was not started in it.
func (r *recorder) miss(lag time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.missed++
	r.lags = append(r.lags, lag)
	r.winLag = append(r.winLag, lag)
}

func (r *recorder) add(latency, lag time.Duration, err error, inWindow bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lags = append(r.lags, lag) // lateness counts for every heartbeat started, failed or not
	r.winLag = append(r.winLag, lag)
	if err != nil {
		r.winErrs++
		if database.IsTimeout(err) {
			r.timeouts++
		}
		msg := database.Redact(err.Error())
		if len(r.errs) < 20 || r.errs[msg] > 0 {
			r.errs[msg]++
		}
		return
	}
	r.win = append(r.win, latency)
	r.all = append(r.all, latency)
	if inWindow {
		r.inWindow++
	} else {
		r.outside++
	}
}

// windowStats summarizes the heartbeats since the last call.
type windowStats struct {
	perSecond     float64
	p50, p99, max time.Duration
	lagP99        time.Duration
	errors        int
}

func (r *recorder) window() windowStats {
	r.mu.Lock()
	win, lag, errs, since := r.win, r.winLag, r.winErrs, r.winStart
	r.win, r.winLag, r.winErrs, r.winStart = nil, nil, 0, time.Now()
	r.mu.Unlock()
	slices.Sort(win)
	slices.Sort(lag)
	return windowStats{
		perSecond: float64(len(win)) / time.Since(since).Seconds(),
		p50:       percentile(win, 0.50),
		p99:       percentile(win, 0.99),
		max:       percentile(win, 1),
		lagP99:    percentile(lag, 0.99),
		errors:    errs,
	}
}

// percentile of sorted durations: the smallest value with at least p of
// the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// snapshot is the worker table's statistics and sizes at one moment.
type snapshot struct {
	Updates     int64 `json:"n_tup_upd"`
	HOTUpdates  int64 `json:"n_tup_hot_upd"`
	DeadTuples  int64 `json:"n_dead_tup"`
	Autovacuums int64 `json:"autovacuum_count"`
	TableBytes  int64 `json:"table_bytes"`
	IndexBytes  int64 `json:"index_bytes"`
	WALBytes    int64 `json:"wal_bytes"`
	WALSyncs    int64 `json:"wal_sync"`
	takenAt     time.Time
}

func takeSnapshot(ctx context.Context, db *database.DB) (snapshot, error) {
	var s snapshot
	err := db.Pool.QueryRow(ctx, `
		SELECT s.n_tup_upd, s.n_tup_hot_upd, s.n_dead_tup, s.autovacuum_count,
			pg_table_size(s.relid), pg_indexes_size(s.relid),
			(SELECT wal_bytes::bigint FROM pg_stat_wal), (SELECT wal_sync FROM pg_stat_wal)
		FROM pg_stat_user_tables s WHERE s.relid = to_regclass('worker')`).
		Scan(&s.Updates, &s.HOTUpdates, &s.DeadTuples, &s.Autovacuums, &s.TableBytes, &s.IndexBytes, &s.WALBytes, &s.WALSyncs)
	if err != nil {
		return s, fmt.Errorf("reading the worker table's statistics: %w", database.RedactError(err))
	}
	s.takenAt = time.Now()
	return s, nil
}

// settledSnapshot waits (up to 15 s) until the update and WAL counters stop
// moving: sessions report their statistics at most once a second, and when
// they end.
func settledSnapshot(ctx context.Context, db *database.DB) (snapshot, error) {
	prev, err := takeSnapshot(ctx, db)
	if err != nil {
		return prev, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return prev, ctx.Err()
		case <-time.After(1200 * time.Millisecond):
		}
		cur, err := takeSnapshot(ctx, db)
		if err != nil {
			return cur, err
		}
		if cur.Updates == prev.Updates && cur.HOTUpdates == prev.HOTUpdates && cur.WALSyncs == prev.WALSyncs {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}
