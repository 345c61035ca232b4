package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/sensors"
)

// handoffOptions are the flags of `eventbench handoff`.
type handoffOptions struct {
	common
	Attunectl string
	Ticker    string
	Rounds    int
	Interval  time.Duration
}

const handoffManifest = `
ref: bench.ticker
label: Python ticker
runtime: core.sensor.python
entrypoint: %s
triggers: [{ref: bench.tick}]
`

// handoff measures the gap of a drain: two real `sensor run` processes on
// one database, one Python ticker (an event every 0.2 s), and the holder
// drained (placement.Drain, as `worker drain` does) Rounds times, each
// round draining whichever worker holds the ticker and uncordoning the
// other.
func handoff(ctx context.Context, args []string) error {
	var o handoffOptions
	fs := flag.NewFlagSet("eventbench handoff", flag.ExitOnError)
	o.common.register(fs)
	fs.StringVar(&o.Attunectl, "attunectl", "", "attunectl binary to run (default: go build ./cmd/attunectl)")
	fs.StringVar(&o.Ticker, "ticker", "testdata/sensors/ticker.py", "the Python sensor to hand over")
	fs.IntVar(&o.Rounds, "rounds", 7, "drains to measure")
	fs.DurationVar(&o.Interval, "heartbeat-interval", 2*time.Second, "the workers' sensor.heartbeat_interval")
	_ = fs.Parse(args)

	dir, err := os.MkdirTemp("", "ebench-handoff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	bin, err := buildAttunectl(ctx, o.Attunectl, dir)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(o.Ticker)
	if err != nil {
		return fmt.Errorf("reading the ticker sensor: %w (run from the repository root or pass --ticker)", err)
	}
	ticker := filepath.Join(dir, "ticker.py")
	if err := os.WriteFile(ticker, src, 0o755); err != nil {
		return err
	}
	url, stopServer, err := o.server(ctx)
	if err != nil {
		return err
	}
	defer stopServer()
	db, drop, err := migrated(ctx, url, o.Schema, 4)
	if err != nil {
		return err
	}
	defer drop()
	pool := db.Pool
	ss, err := sensors.ParseManifest(fmt.Appendf(nil, handoffManifest, ticker))
	if err != nil {
		return err
	}
	if _, err := sensors.Add(ctx, db, ss, false); err != nil {
		return err
	}

	env := workerEnv(url, o.Schema, "ATTUNE__SENSOR__STOP_TIMEOUT=2")
	wargs := []string{"--heartbeat-interval", o.Interval.String(), "--runtimes", "python"}
	fmt.Printf("eventbench handoff: 2 workers (heartbeat interval %s), a Python ticker every 0.2 s, %d drains; server fsync %v; load average %s\n",
		o.Interval, o.Rounds, !o.Ephemeral, loadavg())
	a, err := startWorker(bin, dir, "ho-a", env, wargs...)
	if err != nil {
		return err
	}
	defer a.stop(10 * time.Second)
	ws := []*workerProc{a}
	var workload int64
	if err := pool.QueryRow(ctx, `SELECT sw.id FROM sensor_workload sw JOIN sensor s ON s.id = sw.sensor WHERE s.ref = 'bench.ticker'`).Scan(&workload); err != nil {
		return err
	}
	if err := waitFor(ctx, time.Minute, "the first worker's ticker to emit", ws, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM event WHERE source_workload = $1`, workload).Scan(&n)
		return n > 0
	}); err != nil {
		return err
	}
	b, err := startWorker(bin, dir, "ho-b", env, wargs...)
	if err != nil {
		return err
	}
	defer b.stop(10 * time.Second)
	ws = append(ws, b)
	if err := waitFor(ctx, time.Minute, "the second worker to register", ws, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM worker WHERE name = 'ho-b' AND status = 'active'`).Scan(&n)
		return n > 0
	}); err != nil {
		return err
	}

	var ledgerGaps, eventGaps, drainToFirst []time.Duration
	for round := 1; round <= o.Rounds; round++ {
		var holder string
		var gen int64
		if err := pool.QueryRow(ctx, `SELECT w.name, a.generation FROM sensor_workload_assignment a JOIN worker w ON w.id = a.worker
			WHERE a.workload = $1 AND a.`+fence.Live, workload).Scan(&holder, &gen); err != nil {
			return fmt.Errorf("round %d: who holds the ticker: %w", round, err)
		}
		// Let the holder's process run a while, so its last event is recent.
		time.Sleep(time.Second)
		var asked time.Time
		if err := pool.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&asked); err != nil {
			return err
		}
		if _, err := placement.Drain(ctx, db, holder, placement.DrainOptions{Deadline: time.Minute, Reason: "eventbench handoff", By: "eventbench"}); err != nil {
			return fmt.Errorf("round %d: draining %s: %w", round, holder, err)
		}
		var newGen int64
		if err := waitFor(ctx, time.Minute, "the new owner's first event", ws, func() bool {
			_ = pool.QueryRow(ctx, `SELECT coalesce(max(source_generation), 0) FROM event WHERE source_workload = $1`, workload).Scan(&newGen)
			return newGen > gen
		}); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		var lastOld, firstNew, ended time.Time
		var newOwner, why string
		err := pool.QueryRow(ctx, `
			SELECT (SELECT max(created) FROM event WHERE source_workload = $1 AND source_generation = $2),
			       (SELECT min(created) FROM event WHERE source_workload = $1 AND source_generation = $3),
			       (SELECT ended_at FROM sensor_ownership WHERE workload = $1 AND generation = $2 ORDER BY id DESC LIMIT 1),
			       (SELECT coalesce(end_reason, '') FROM sensor_ownership WHERE workload = $1 AND generation = $2 ORDER BY id DESC LIMIT 1),
			       (SELECT coalesce(worker_name, '') FROM sensor_ownership WHERE workload = $1 AND generation = $3 ORDER BY id DESC LIMIT 1)`,
			workload, gen, newGen).Scan(&lastOld, &firstNew, &ended, &why, &newOwner)
		if err != nil {
			return fmt.Errorf("round %d: reading the ledger: %w", round, err)
		}
		lg, eg, df := firstNew.Sub(ended), firstNew.Sub(lastOld), firstNew.Sub(asked)
		ledgerGaps, eventGaps, drainToFirst = append(ledgerGaps, lg), append(eventGaps, eg), append(drainToFirst, df)
		fmt.Printf("round %d: %s (generation %d) → %s (generation %d), ended %s; released → first event %s, old last event → new first event %s, drain asked → first event %s; load %s\n",
			round, holder, gen, newOwner, newGen, why, ms(lg), ms(eg), ms(df), loadavg())
		// The drained worker may take sensors again; the next round drains
		// the new holder.
		if _, err := placement.Uncordon(ctx, db, holder); err != nil {
			return err
		}
	}
	fmt.Printf("handoff gap over %d drains: released (sensor_ownership.ended_at) → new first event: median %s, max %s; old last event → new first event: median %s, max %s; drain asked → new first event: median %s, max %s\n",
		o.Rounds, ms(median(ledgerGaps)), ms(slices.Max(ledgerGaps)), ms(median(eventGaps)), ms(slices.Max(eventGaps)),
		ms(median(drainToFirst)), ms(slices.Max(drainToFirst)))
	return nil
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
