package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/sensors"
)

// rssOptions are the flags of `eventbench rss`.
type rssOptions struct {
	common
	Attunectl string
	Timers    int
	Wait      time.Duration
}

// rss reads the resident memory of a real `sensor run` process after Wait,
// first with no sensors, then running Timers built-in interval timers of
// 1 s (each its own sensor).
func rss(ctx context.Context, args []string) error {
	var o rssOptions
	fs := flag.NewFlagSet("eventbench rss", flag.ExitOnError)
	o.common.register(fs)
	fs.StringVar(&o.Attunectl, "attunectl", "", "attunectl binary to run (default: go build ./cmd/attunectl)")
	fs.IntVar(&o.Timers, "timers", 100, "built-in interval timers (1 s)")
	fs.DurationVar(&o.Wait, "wait", time.Minute, "how long each worker runs before its memory is read")
	_ = fs.Parse(args)

	dir, err := os.MkdirTemp("", "ebench-rss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildAttunectl(ctx, o.Attunectl, dir)
	if err != nil {
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
	// The default capacity is 10 sensors a worker; both runs get room for
	// the timers, so that they differ only in the sensors they run.
	env := workerEnv(url, o.Schema, fmt.Sprintf("ATTUNE__SENSOR__MAX_CONCURRENT_SENSORS=%d", max(o.Timers, 10)))
	// The runtimes are given, so that detection (which may run the
	// interpreters of the host) is the same in both runs.
	wargs := []string{"--runtimes", "built-in sensor"}
	fmt.Printf("eventbench rss: `sensor run` (default settings, sensor.max_concurrent_sensors %d) for %s with no sensors, then with %d built-in 1 s timers; server fsync %v\n",
		max(o.Timers, 10), o.Wait, o.Timers, !o.Ephemeral)

	measure := func(label string, want int) error {
		var e0 int64
		_ = pool.QueryRow(ctx, "SELECT count(*) FROM event").Scan(&e0)
		w, err := startWorker(bin, dir, "rss-"+label, env, wargs...)
		if err != nil {
			return err
		}
		defer w.stop(30 * time.Second)
		if want > 0 {
			if err := waitFor(ctx, time.Minute, fmt.Sprintf("%d timers to run", want), []*workerProc{w}, func() bool {
				var n int
				_ = pool.QueryRow(ctx, `SELECT count(DISTINCT source_workload) FROM event`).Scan(&n)
				return n >= want
			}); err != nil {
				return err
			}
		}
		_ = pool.QueryRow(ctx, "SELECT count(*) FROM event").Scan(&e0)
		start := time.Now()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Wait):
		}
		if w.exited() {
			return fmt.Errorf("worker %s exited:\n%s", w.name, w.out.String())
		}
		pid := w.cmd.Process.Pid
		rss, hwm := procStatus(pid, "VmRSS"), procStatus(pid, "VmHWM")
		var e1 int64
		_ = pool.QueryRow(ctx, "SELECT count(*) FROM event").Scan(&e1)
		fmt.Printf("%-12s RSS %.1f MiB (peak %.1f MiB) after %s; %d events while it ran (%.0f/s); load %s\n",
			label+":", float64(rss)/1024, float64(hwm)/1024, time.Since(start).Round(time.Second), e1-e0,
			float64(e1-e0)/time.Since(start).Seconds(), loadavg())
		return nil
	}
	if err := measure("none", 0); err != nil {
		return err
	}
	var m strings.Builder
	for i := range o.Timers {
		fmt.Fprintf(&m, "- ref: bench.timer%d\n  runtime: core.sensor.builtin\n  entrypoint: interval\n  config: {interval_seconds: 1}\n  triggers: [{ref: bench.timer%d_fired}]\n", i, i)
	}
	ss, err := sensors.ParseManifest([]byte(m.String()))
	if err != nil {
		return fmt.Errorf("timer manifest: %w", err)
	}
	if _, err := sensors.Add(ctx, db, ss, false); err != nil {
		return err
	}
	return measure(fmt.Sprintf("%d-timers", o.Timers), o.Timers)
}
