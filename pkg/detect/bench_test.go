package detect

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/runtimes"
)

// slowRuntimes are n runtimes whose one command takes about 200 ms; the
// args differ so that the per-call cache does not merge them.
func slowRuntimes(tb testing.TB, n int) []runtimes.Runtime {
	tb.Helper()
	script := writeScript(tb, tb.TempDir(), "slow", "sleep 0.2\necho \"slow 1.0 $1\"\n")
	var rts []runtimes.Runtime
	for i := range n {
		rts = append(rts, rt("bench.sensor.r"+strconv.Itoa(i), "R"+strconv.Itoa(i),
			runtimes.Command{Binary: script, Args: []string{strconv.Itoa(i)}, Pattern: `slow 1\.0`}))
	}
	return rts
}

// timeVerify returns the wall time of one Verify call, failing when a
// runtime is unavailable (the measurement would be meaningless).
func timeVerify(tb testing.TB, rts []runtimes.Runtime) time.Duration {
	tb.Helper()
	start := time.Now()
	res := Verify(context.Background(), rts, Options{RunAs: selfRunAs()})
	d := time.Since(start)
	if len(res.Available) != len(rts) {
		tb.Fatalf("not all available: %+v", res.Runtimes)
	}
	return d
}

// TestVerifyRunsRuntimesConcurrently proves concurrency without timing
// anything: each of eight runtimes' commands waits at a barrier until all
// eight have started, and succeeds only if they all did. Verified one after
// another, the first would never see the others and would fail. (The speed
// itself is BenchmarkVerifyConcurrent's to measure.)
func TestVerifyRunsRuntimesConcurrently(t *testing.T) {
	dir := t.TempDir()
	script := writeScript(t, t.TempDir(), "barrier", `touch "$1/started-$2"
i=0
while [ "$(ls "$1" | grep -c '^started-')" -lt 8 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
[ "$(ls "$1" | grep -c '^started-')" -ge 8 ] && echo "barrier passed by $2"
`)
	var rts []runtimes.Runtime
	for i := range 8 {
		rts = append(rts, rt("barrier.sensor.r"+strconv.Itoa(i), "R"+strconv.Itoa(i),
			runtimes.Command{Binary: script, Args: []string{dir, strconv.Itoa(i)}, Pattern: `barrier passed`}))
	}
	res := Verify(context.Background(), rts, Options{RunAs: selfRunAs(), Timeout: 30 * time.Second})
	if len(res.Available) != 8 {
		for _, r := range res.Runtimes {
			t.Logf("%s: available=%v reason=%q", r.Ref, r.Available, r.Reason)
		}
		t.Fatalf("%d of 8 runtimes passed the barrier: they did not run concurrently", len(res.Available))
	}
}

// BenchmarkVerifyConcurrent measures Verify on eight ~200 ms runtimes and,
// for comparison, the same commands verified one after another.
//
//	go test ./pkg/detect -run '^$' -bench VerifyConcurrent -benchtime 5x
//
// Metrics: concurrent-ms (one Verify of all eight), sequential-ms (eight
// Verify calls in a row), one-cmd-ms (one runtime alone), x-one-cmd
// (concurrent / one command; the goal is ≤ 1.5) and speedup (sequential /
// concurrent).
func BenchmarkVerifyConcurrent(b *testing.B) {
	rts := slowRuntimes(b, 8)
	var conc, seq, one time.Duration
	for b.Loop() {
		conc += timeVerify(b, rts)
		b.StopTimer()
		for i := range rts {
			seq += timeVerify(b, rts[i:i+1])
		}
		one += timeVerify(b, rts[:1])
		b.StartTimer()
	}
	n := float64(b.N)
	msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(msOf(conc), "concurrent-ms")
	b.ReportMetric(msOf(seq), "sequential-ms")
	b.ReportMetric(msOf(one), "one-cmd-ms")
	b.ReportMetric(float64(conc)/float64(one), "x-one-cmd")
	b.ReportMetric(float64(seq)/float64(conc), "speedup")
}

// BenchmarkVerifySeed measures the seed's five sensor runtimes on this host
// with the real python3 and node (three are always available, so two
// commands run, concurrently).
//
//	go test ./pkg/detect -run '^$' -bench VerifySeed -benchtime 20x
func BenchmarkVerifySeed(b *testing.B) {
	rts := loadSeed(b)
	for b.Loop() {
		res := Verify(context.Background(), rts, Options{RunAs: selfRunAs()})
		if len(res.Available) != 5 {
			b.Fatalf("available = %q: this benchmark needs python3 and node on PATH", res.Available)
		}
	}
}
