package placement_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/events"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/sensors"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

// Three workers with different runtimes, versions, labels and taints place
// six sensors only where they fit; a seventh that nobody fits is
// unschedulable with the reason.
func TestPlaceOnlyWhereTheyFit(t *testing.T) {
	e := newEnv(t, 300*time.Millisecond)
	a := e.worker(spec{name: "a", runtimes: []string{"python", "native"}, versions: map[string]string{"python": "3.12.4"}, labels: map[string]string{"zone": "eu"}})
	b := e.worker(spec{name: "b", runtimes: []string{"python", "node.js", "native"}, versions: map[string]string{"python": "3.10.2", "node.js": "20.1.0"}, labels: map[string]string{"zone": "us"}})
	c := e.worker(spec{name: "c", runtimes: []string{"shell"}, taints: []placement.Taint{{Key: "gpu", Value: "true", Effect: "no_schedule"}}})
	e.addSensors(
		sensors.Sensor{Ref: "t.py312", Runtime: "core.sensor.python", RuntimeVersion: ">=3.12", Entrypoint: "x.py"},
		sensors.Sensor{Ref: "t.pyany", Runtime: "core.sensor.python", Entrypoint: "x.py"},
		sensors.Sensor{Ref: "t.node", Runtime: "core.sensor.nodejs", RuntimeVersion: "^20", Entrypoint: "x.js"},
		sensors.Sensor{Ref: "t.shellgpu", Runtime: "core.sensor.shell", Entrypoint: "x.sh",
			Placement: sensors.Placement{Tolerations: []placement.Toleration{{Key: "gpu", Operator: "exists"}}}},
		sensors.Sensor{Ref: "t.native_us", Runtime: "core.sensor.native", Entrypoint: "x",
			Placement: sensors.Placement{Selector: map[string]string{"zone": "us"}}},
		sensors.Sensor{Ref: "t.py_eu", Runtime: "core.sensor.python", Entrypoint: "x.py",
			Placement: sensors.Placement{Selector: map[string]string{"zone": "eu"}}},
		sensors.Sensor{Ref: "t.shell_plain", Runtime: "core.sensor.shell", Entrypoint: "x.sh"},
		sensors.Sensor{Ref: "t.py313", Runtime: "core.sensor.python", RuntimeVersion: ">=3.13", Entrypoint: "x.py"},
	)
	// Fair shares are counted by runtime and selector; a sensor that only
	// one worker can run and that is above that worker's share is taken
	// once it has waited two intervals.
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		e.tick(a, b, c)
		n := 0
		for _, o := range e.owners() {
			if o != "" {
				n++
			}
		}
		if n == 6 {
			break
		}
		time.Sleep(e.interval)
	}
	t.Logf("six sensors placed in %s", time.Since(start).Round(time.Millisecond))
	allowed := map[string][]string{
		"t.py312": {"a"}, "t.pyany": {"a", "b"}, "t.node": {"b"}, "t.shellgpu": {"c"},
		"t.native_us": {"b"}, "t.py_eu": {"a"}, "t.shell_plain": {""}, "t.py313": {""},
	}
	own := e.owners()
	for ref, ok := range allowed {
		if !slices.Contains(ok, own[ref]) {
			t.Errorf("%s is owned by %q, want one of %q", ref, own[ref], ok)
		}
	}
	l, err := sensors.List(ctxT(t), e.db, sensors.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"t.py313":       {"unschedulable", "no live worker advertises python satisfying >=3.13"},
		"t.shell_plain": {"unschedulable", "every live worker with shell has a taint the sensor does not tolerate (gpu=true:no_schedule)"},
		"t.py312":       {"assigned", ""},
	}
	for _, s := range l.Sensors {
		if w, ok := want[s.Ref]; ok && (s.State != w[0] || s.Reason != w[1]) {
			t.Errorf("%s: state %q reason %q, want %q %q", s.Ref, s.State, s.Reason, w[0], w[1])
		}
		// A claim keeps the generation (0 for a new workload): it is bumped
		// when a process starts.
		if s.State == "assigned" && (s.Worker == nil || s.LeaseExpires == nil || s.Generation != 0) {
			t.Errorf("%s: assigned without worker, lease or generation 0: %+v", s.Ref, s)
		}
	}
}

// An owner that stops renewing loses its sensors to another worker once
// its lease expires; the ledger says "expired", and the old owner's next
// renewal drops them at once.
func TestOwnerExpiry(t *testing.T) {
	e := newEnv(t, 300*time.Millisecond)
	a := e.worker(spec{name: "a", runtimes: []string{"shell"}})
	e.addSensors(shellSensors(4)...)
	e.tick(a)
	if got := e.loads(a); got[0] != 4 {
		t.Fatalf("a holds %v, want 4", got)
	}
	b := e.worker(spec{name: "b", runtimes: []string{"shell"}})
	// a goes silent (a kill -9, a SIGSTOP); b ticks on.
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		e.tick(b)
		if e.loads(b)[0] == 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	moved := time.Since(start)
	if got := e.loads(b); got[0] != 4 {
		t.Fatalf("b holds %v after %s, want 4", got, moved)
	}
	grace := 3 * e.interval
	if moved > grace+e.interval+500*time.Millisecond {
		t.Errorf("sensors moved after %s, want within grace %s + one interval", moved, grace)
	}
	t.Logf("owned elsewhere %s after the owner went silent (grace %s)", moved.Round(time.Millisecond), grace)
	if r := e.ledgerReasons(); r["expired"] != 4 {
		t.Errorf("ledger reasons %v, want 4 expired", r)
	}
	// a wakes up: its renewal fails, it drops everything at once. (Its
	// worker row is stale; its heartbeat still succeeds: it is ours.)
	held, err := a.p.Tick(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(held.Leases) != 0 || len(held.Dropped) != 4 {
		t.Fatalf("after waking, a holds %d and dropped %d, want 0 and 4", len(held.Leases), len(held.Dropped))
	}
	for _, d := range held.Dropped {
		if d.Reason != "lost" {
			t.Errorf("dropped %s with reason %q, want lost", d.SensorRef, d.Reason)
		}
	}
	e.assertLedgerNeverOverlaps()
}

// Every write on behalf of a sensor carries the fence: renew, release,
// state and event writes of a stale generation or instance fail. The
// writes are the ones `sensor run` makes (pkg/events, the placer's
// release).
func TestFence(t *testing.T) {
	e := newEnv(t, 300*time.Millisecond)
	a := e.worker(spec{name: "a", runtimes: []string{"shell"}})
	e.addSensors(sensors.Sensor{Ref: "t.one", Runtime: "core.sensor.shell", Entrypoint: "x.sh", Triggers: []sensors.Trigger{{Ref: "t.fired"}}})
	e.tick(a)
	held := a.p.Held()
	if len(held) != 1 || held[0].Generation != 0 {
		t.Fatalf("a holds %+v, want one lease of generation 0 (a claim does not bump it)", held)
	}
	ctx := ctxT(t)
	w := events.Writer{Pool: e.pool}
	store := events.NewStore(e.db, w)
	// A process starts: one bump, recorded by the placer, whose renewal
	// then names generation 1.
	f, err := a.p.BeginRun(func() (fence.Fence, error) {
		f, _, err := store.BeginRun(ctx, held[0].Fence)
		return f, err
	})
	if err != nil || f.Generation != 1 {
		t.Fatalf("BeginRun: %v, generation %d, want 1", err, f.Generation)
	}
	e.tick(a)
	if h := a.p.Held(); len(h) != 1 || h[0].Generation != 1 {
		t.Fatalf("after a renewal a holds %+v, want generation 1", h)
	}
	event := func(f fence.Fence) supervise.Event {
		return supervise.Event{Fence: f, TriggerRef: "t.fired", Payload: json.RawMessage(`{"n":1}`)}
	}
	release := func(p *placement.Placer, f fence.Fence) {
		t.Helper()
		if err := placement.ReleaseFenced(ctx, p, f, placement.EndReleased); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.WriteEvent(ctx, event(f)); err != nil {
		t.Fatalf("event under the current fence: %v", err)
	}
	if err := store.SaveState(ctx, f, "running", supervise.State{}); err != nil {
		t.Fatalf("state under the current fence: %v", err)
	}
	stale := f
	stale.Generation = 0
	if _, err := w.WriteEvent(ctx, event(stale)); !errorsIsStale(err) {
		t.Errorf("event under generation 0: %v, want a stale fence", err)
	}
	release(a.p, stale)
	if o := e.owners()["t.one"]; o != "a" {
		t.Errorf("a release under generation 0 gave the sensor up (owner %q)", o)
	}
	other := f
	other.Instance = fence.InstanceUUID("another-instance")
	if err := store.SaveState(ctx, other, "running", supervise.State{}); !errorsIsStale(err) {
		t.Errorf("state from another instance: %v, want a stale fence", err)
	}

	// The lease runs out and b takes the sensor (its claim keeps
	// generation 1; b's own process start would bump it): every write
	// under a's fence now fails — it names a's worker and instance — and
	// a's renewal drops it.
	b := e.worker(spec{name: "b", runtimes: []string{"shell"}})
	deadline := time.Now().Add(5 * time.Second)
	for len(b.p.Held()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		e.tick(b)
	}
	if bh := b.p.Held(); len(bh) != 1 || bh[0].Generation != 1 || bh[0].Worker == f.Worker {
		t.Fatalf("b holds %+v, want the sensor, generation 1 under b's own worker", bh)
	}
	if _, err := w.WriteEvent(ctx, event(f)); !errorsIsStale(err) {
		t.Errorf("event from the old owner: %v, want a stale fence", err)
	}
	release(a.p, f)
	if o := e.owners()["t.one"]; o != "b" {
		t.Errorf("the old owner's release took the sensor from b (owner %q)", o)
	}
	if err := store.SaveState(ctx, f, "running", supervise.State{}); !errorsIsStale(err) {
		t.Errorf("state from the old owner: %v, want a stale fence", err)
	}
	ah, err := a.p.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ah.Leases) != 0 || len(ah.Dropped) != 1 {
		t.Errorf("a's renewal kept %d and dropped %d, want 0 and 1", len(ah.Leases), len(ah.Dropped))
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM event`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d events written, want only the one under the current fence", n)
	}
	// b's writes succeed.
	if _, err := w.WriteEvent(ctx, event(b.p.Held()[0].Fence)); err != nil {
		t.Errorf("event from the new owner: %v", err)
	}
	// A generation b did not start (a process start it does not know of)
	// fails b's renewal, which names the full fence: b drops the sensor.
	if _, err := e.pool.Exec(ctx, `UPDATE sensor_workload_assignment SET generation = generation + 1`); err != nil {
		t.Fatal(err)
	}
	bh, err := b.p.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(bh.Leases) != 0 || len(bh.Dropped) != 1 || bh.Dropped[0].Reason != "lost" {
		t.Errorf("b's renewal under a generation it does not know kept %d and dropped %+v, want it lost", len(bh.Leases), bh.Dropped)
	}
}

// A worker that stops renewing is watched: once its leases have gone more
// than half their length unrenewed, the survivors' ticks report when the
// next of them lapses (Held.NextLapse), so the sensor service ticks just
// after it; leases of live workers, and a worker's own, are never
// reported. At that tick the survivors take the dead worker's sensors
// between them in one tick each.
func TestSurvivorsWakeAtALapseAndClaimInBulk(t *testing.T) {
	e := newEnv(t, time.Second)
	a := e.worker(spec{name: "a", runtimes: []string{"shell"}, capacity: 20})
	b := e.worker(spec{name: "b", runtimes: []string{"shell"}, capacity: 20})
	c := e.worker(spec{name: "c", runtimes: []string{"shell"}, capacity: 20})
	e.addSensors(shellSensors(12)...)
	for i := 0; i < 20; i++ {
		e.tick(a, b, c)
		if l := e.loads(a, b, c); l[0] == 4 && l[2] == 4 {
			break
		}
	}
	if l := e.loads(a, b, c); l[0] != 4 || l[2] != 4 {
		t.Fatalf("loads %v, want 4 each before the failure", l)
	}
	tickA := func() placement.Held {
		t.Helper()
		h, err := a.p.Tick(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// Everyone renews: nothing to watch.
	if h := tickA(); h.NextLapse != 0 {
		t.Fatalf("with every worker renewing, a was told of a lapse in %s; want none", h.NextLapse)
	}
	// c goes silent (kill -9); a and b renew every half interval.
	silent := time.Now()
	var h placement.Held
	for time.Since(silent) < 2500*time.Millisecond {
		time.Sleep(500 * time.Millisecond)
		e.tick(b)
		if h = tickA(); h.NextLapse > 0 && h.NextLapse+placement.LapseMargin < e.interval {
			break
		}
	}
	if h.NextLapse <= 0 {
		t.Fatalf("%s after c went silent (lease 3 s), a was told of no lapse", time.Since(silent).Round(time.Millisecond))
	}
	if h.NextLapse > 1500*time.Millisecond {
		t.Errorf("a was told c's lease lapses in %s; a lease unrenewed for more than half its 3 s has at most 1.5 s left", h.NextLapse)
	}
	d, ok := h.Sooner(e.interval)
	if !ok || d != h.NextLapse+placement.LapseMargin {
		t.Errorf("Sooner = %s, %v; want the lapse plus %s, before the next heartbeat", d, ok, placement.LapseMargin)
	}
	time.Sleep(d)
	ha := tickA()
	hb, err := b.p.Tick(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ha.Claimed) != 2 || len(hb.Claimed) != 2 {
		t.Errorf("at the lapse a claimed %d and b %d; want c's 4 sensors shared, 2 each, in one tick", len(ha.Claimed), len(hb.Claimed))
	}
	if l := e.loads(a, b); l[0] != 6 || l[1] != 6 {
		t.Errorf("after one tick each at the lapse, a and b hold %v; want 6 each", l)
	}
	if ha.NextLapse != 0 || hb.NextLapse != 0 {
		t.Errorf("with c's leases taken, a and b were still told of lapses (%s, %s)", ha.NextLapse, hb.NextLapse)
	}
	e.assertLedgerNeverOverlaps()
}

// TestLapseReclaimedBySameWorkerIsInTheLedger: a worker that went silent
// past its lease and then claims the same sensor again (no other worker
// took it) leaves two spans: the first ended 'expired' when the lease ran
// out, the second started at the new claim.
func TestLapseReclaimedBySameWorkerIsInTheLedger(t *testing.T) {
	e := newEnv(t, 200*time.Millisecond)
	a := e.worker(spec{name: "a", runtimes: []string{"shell"}})
	e.addSensors(shellSensors(1)...)
	e.tick(a)
	if got := e.loads(a); got[0] != 1 {
		t.Fatalf("a holds %v, want 1", got)
	}
	time.Sleep(3*e.interval + 200*time.Millisecond) // the lease lapses
	for i := 0; i < 5; i++ {
		e.tick(a)
		if e.loads(a)[0] == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.loads(a); got[0] != 1 {
		t.Fatalf("a holds %v after the lapse, want 1 again", got)
	}
	rows, err := e.pool.Query(ctxT(t), `SELECT coalesce(end_reason, ''), ended_at IS NOT NULL AND ended_at <= started_at + interval '1 second'
		FROM sensor_ownership ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var spans []string
	for rows.Next() {
		var reason string
		var short bool
		if err := rows.Scan(&reason, &short); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, fmt.Sprintf("%s/%v", reason, short))
	}
	if want := []string{"expired/true", "/false"}; !slices.Equal(spans, want) {
		t.Errorf("ledger spans %v, want %v (one ended when the lease ran out, one open)", spans, want)
	}
	e.assertLedgerNeverOverlaps()
}
