package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// The placement benchmarks run the real binary against a real database:
//
//	go test ./cmd/attunectl -run '^$' -bench 'SensorAddToFirstEvent|Drain' -benchtime 5x
//
// Their figures are in `attunectl help placement`.

// BenchmarkSensorAddToFirstEvent: an idle worker, at the default 30 s
// heartbeat and at 1 s; each iteration adds a built-in timer with `sensor
// add` and waits for its first event. ns/op is the time from the start of
// `sensor add` to the event's row (the command's own run included).
func BenchmarkSensorAddToFirstEvent(b *testing.B) {
	for _, hb := range []time.Duration{30 * time.Second, time.Second} {
		b.Run("heartbeat="+hb.String(), func(b *testing.B) {
			db := dbtest.New(b)
			e := dbEnv(b, db)
			name := fmt.Sprintf("idle-%d", int(hb.Seconds()))
			p := start(b, e, "sensor", "run", "--name", name, "--heartbeat-interval", hb.String(), "--runtimes", "built-in sensor")
			waitRegistered(b, p, db.Pool, name)
			time.Sleep(500 * time.Millisecond) // past its first tick: idle
			dir := b.TempDir()
			i := 0
			b.ResetTimer()
			for b.Loop() {
				i++
				ref := fmt.Sprintf("bench.t%d", i)
				manifest := fmt.Sprintf("ref: %s\nruntime: core.sensor.builtin\nentrypoint: interval\nconfig: {interval_seconds: 0.05}\ntriggers: [%s_tick]\n", ref, ref)
				if res := runIn(b, dir, e, manifest, "sensor", "add", "-f", "-"); res.Code != 0 {
					b.Fatalf("sensor add: exit %d\n%s", res.Code, res.Stderr)
				}
				waitUntil(b, p, 2*hb+30*time.Second, ref+"'s first event", func() bool {
					var n int
					_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM event WHERE source_ref = $1`, ref).Scan(&n)
					return n > 0
				})
			}
			b.StopTimer()
			stopSensor(b, p, db.Pool, name)
		})
	}
}

// BenchmarkDrain100: a worker holding 100 built-in sensors is drained onto
// an idle one (heartbeat 1 s, the default budget of 2 a interval, then
// --budget 100). ns/op is the drain from `worker drain` until the drained
// worker holds nothing; max-gap-s is the largest time any sensor had no
// owner (from the ledger: the new span's start minus the old one's end).
func BenchmarkDrain100(b *testing.B) {
	for _, budget := range []int{2, 100} {
		b.Run(fmt.Sprintf("budget=%d", budget), func(b *testing.B) {
			var gaps, took time.Duration
			b.StopTimer()
			for range b.N {
				db := dbtest.New(b)
				e := dbEnv(b, db)
				var m strings.Builder
				for i := range 100 {
					fmt.Fprintf(&m, "---\nref: drain.t%d\nruntime: core.sensor.builtin\nentrypoint: interval\nconfig: {interval_seconds: 5}\ntriggers: [drain.t%d_tick]\n", i, i)
				}
				if res := runIn(b, b.TempDir(), e, m.String(), "sensor", "add", "-f", "-"); res.Code != 0 {
					b.Fatalf("sensor add: exit %d\n%s", res.Code, res.Stderr)
				}
				startWorker := func(name string) *proc {
					return start(b, append(e, "ATTUNE__SENSOR__MAX_CONCURRENT_SENSORS=100"), "sensor", "run", "--name", name, "--heartbeat-interval", "1s", "--runtimes", "built-in sensor")
				}
				a := startWorker("drain-a")
				waitUntil(b, a, 60*time.Second, "drain-a to hold all 100", func() bool { return heldBy(db, "drain-a") == 100 })
				other := startWorker("drain-b")
				waitRegistered(b, other, db.Pool, "drain-b")
				b.StartTimer()
				begin := time.Now()
				if res := run(b, e, "worker", "drain", "drain-a", "--wait", "--deadline", "10m", "--budget", fmt.Sprint(budget)); res.Code != 0 {
					b.Fatalf("worker drain: exit %d\n%s", res.Code, res.Stderr)
				}
				took = time.Since(begin)
				b.StopTimer()
				var gap float64
				if err := db.Pool.QueryRow(context.Background(), `
					SELECT coalesce(max(extract(epoch FROM n.started_at - o.ended_at)), 0)::float8
					FROM sensor_ownership o JOIN sensor_ownership n ON n.workload = o.workload AND n.id > o.id
					WHERE o.worker_name = 'drain-a' AND o.ended_at IS NOT NULL
					  AND n.id = (SELECT min(id) FROM sensor_ownership x WHERE x.workload = o.workload AND x.id > o.id)`).Scan(&gap); err != nil {
					b.Fatal(err)
				}
				gaps = max(gaps, time.Duration(gap*float64(time.Second)))
				stopSensor(b, other, db.Pool, "drain-b")
				stopSensor(b, a, db.Pool, "drain-a")
			}
			b.ReportMetric(gaps.Seconds(), "max-gap-s")
			b.ReportMetric(took.Seconds(), "last-drain-s")
		})
	}
}

// heldBy counts the live leases of a worker.
func heldBy(db *dbtest.DB, name string) int {
	var n int
	_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM sensor_workload_assignment a JOIN worker w ON w.id = a.worker
		WHERE w.name = $1 AND a.lease_expires_at > clock_timestamp()`, name).Scan(&n)
	return n
}
