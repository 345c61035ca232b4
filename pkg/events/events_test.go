package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// fixture is a sensor with one trigger, one workload and a worker holding
// it under a 60 s lease, made with plain SQL against the migrated tables.
type fixture struct {
	db      *database.DB
	pool    *pgxpool.Pool
	sensor  int64
	ref     string
	trigger supervise.Trigger
	fence   fence.Fence
}

const instanceA = "00000000-0000-4000-8000-00000000000a"
const instanceB = "00000000-0000-4000-8000-00000000000b"

func newFixture(t *testing.T, runtimeRef, entrypoint, config string) fixture {
	t.Helper()
	d := dbtest.New(t)
	ctx := context.Background()
	f := fixture{db: d.Handle(t), pool: d.Pool, ref: "demo.ticker"}
	q := func(sql string, args ...any) int64 {
		t.Helper()
		var id int64
		if err := d.Pool.QueryRow(ctx, sql, args...).Scan(&id); err != nil {
			t.Fatalf("fixture: %s: %v", strings.Fields(sql)[0:3], err)
		}
		return id
	}
	f.sensor = q(`INSERT INTO sensor (ref, pack_ref, label, entrypoint, runtime, runtime_ref, enabled, config)
		SELECT $1, 'demo', 'Ticker', $2, id, ref, true, $3::jsonb FROM runtime WHERE ref = $4 RETURNING id`,
		f.ref, entrypoint, config, runtimeRef)
	tid := q(`INSERT INTO trigger (ref, pack_ref, label, sensor, sensor_ref) VALUES ('demo.tick', 'demo', 'Tick', $1, $2) RETURNING id`, f.sensor, f.ref)
	f.trigger = supervise.Trigger{ID: tid, Ref: "demo.tick", TriggerRef: "demo.tick", Config: json.RawMessage(`{}`)}
	wl := q(`INSERT INTO sensor_workload (sensor, workload_key) VALUES ($1, 'default') RETURNING id`, f.sensor)
	worker := q(`INSERT INTO worker (name, worker_type, worker_role, status, last_heartbeat) VALUES ('w-a', 'local', 'sensor', 'active', now()) RETURNING id`)
	q(`INSERT INTO worker (name, worker_type, worker_role, status, last_heartbeat) VALUES ('w-b', 'local', 'sensor', 'active', now()) RETURNING id`)
	q(`INSERT INTO sensor_workload_assignment (workload, worker, worker_instance, generation, lease_expires_at, assigned_at, renewed_at)
		VALUES ($1, $2, $3, 1, now() + interval '60 seconds', now(), now()) RETURNING workload`, wl, worker, instanceA)
	f.fence = fence.Fence{Workload: wl, Worker: worker, Instance: instanceA, Generation: 1}
	return f
}

// takeOver gives the workload to worker w-b (another instance, next
// generation), as a claim after expiry would.
func (f fixture) takeOver(t *testing.T) {
	t.Helper()
	_, err := f.pool.Exec(context.Background(), `
		UPDATE sensor_workload_assignment SET worker = (SELECT id FROM worker WHERE name = 'w-b'),
		    worker_instance = $2, generation = generation + 1, assigned_at = now(), renewed_at = now(),
		    lease_expires_at = now() + interval '60 seconds'
		WHERE workload = $1`, f.fence.Workload, instanceB)
	if err != nil {
		t.Fatal(err)
	}
}

func (f fixture) count(t *testing.T, where string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), "SELECT count(*) FROM event WHERE "+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f fixture) event(payload string) supervise.Event {
	return supervise.Event{Fence: f.fence, SensorID: f.sensor, SensorRef: f.ref, TriggerID: f.trigger.ID,
		TriggerRef: f.trigger.TriggerRef, Payload: json.RawMessage(payload)}
}

func TestWriteEventOnlyUnderTheCurrentFence(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"writer", "batch writer", "async batch writer"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "core.sensor.builtin", "interval", `{"interval_seconds": 1}`)
			var w supervise.EventWriter = Writer{Pool: f.pool}
			if name != "writer" {
				bw := NewBatchWriter(f.db, 2, name == "async batch writer")
				t.Cleanup(bw.Close)
				w = bw
			}
			testFencedWrites(t, f, w)
		})
	}
}

func testFencedWrites(t *testing.T, f fixture, w supervise.EventWriter) {
	ctx := context.Background()

	id, err := w.WriteEvent(ctx, f.event(`{"n": 1}`))
	if err != nil || id == 0 {
		t.Fatalf("WriteEvent under the current fence = %d, %v", id, err)
	}
	var gen int64
	var src string
	if err := f.pool.QueryRow(ctx, "SELECT source_generation, source_ref FROM event WHERE id = $1", id).Scan(&gen, &src); err != nil || gen != 1 || src != f.ref {
		t.Fatalf("event row: generation %d, source_ref %q, %v; want 1, %q", gen, src, err, f.ref)
	}

	stale := []struct {
		name  string
		mut   func(fence.Fence) fence.Fence
		setup string
	}{
		{"old generation", func(x fence.Fence) fence.Fence { x.Generation = 0; return x }, ""},
		{"other instance", func(x fence.Fence) fence.Fence { x.Instance = instanceB; return x }, ""},
		{"other worker", func(x fence.Fence) fence.Fence { x.Worker++; return x }, ""},
		{"expired lease", func(x fence.Fence) fence.Fence { return x },
			"UPDATE sensor_workload_assignment SET lease_expires_at = now() - interval '1 second'"},
	}
	for _, c := range stale {
		if c.setup != "" {
			if _, err := f.pool.Exec(ctx, c.setup); err != nil {
				t.Fatal(err)
			}
		}
		ev := f.event(`{"n": 2}`)
		ev.Fence = c.mut(ev.Fence)
		if _, err := w.WriteEvent(ctx, ev); !errors.Is(err, fence.ErrStale) {
			t.Errorf("%s: WriteEvent = %v, want ErrFenceStale", c.name, err)
		}
	}
	if n := f.count(t, "true"); n != 1 {
		t.Fatalf("%d events in the table, want only the one written under the current fence", n)
	}
}

// stubs for the endpoint test: the real writer, and a post helper.
func post(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestEndpointAnswers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "core.sensor.python", "ticker.py", `{}`)
	var staleMu sync.Mutex
	var staleFences []fence.Fence
	ep := supervise.NewEndpoint(Writer{Pool: f.pool}, supervise.EndpointOptions{RatePerSecond: 0.001, Burst: 3,
		OnStale: func(x fence.Fence) { staleMu.Lock(); staleFences = append(staleFences, x); staleMu.Unlock() }})
	if err := ep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close(context.Background()) })
	tok := ep.Grant(f.fence, f.sensor, f.ref, []supervise.Trigger{f.trigger})
	url := ep.URL() + "/events"

	code, body := post(t, url, tok, `{"trigger_ref": "demo.tick", "payload": {"n": 1}}`)
	if code != http.StatusCreated || body["id"] == nil {
		t.Fatalf("good event: %d %v, want 201 with an id", code, body)
	}
	if code, _ := post(t, ep.URL()+"/api/v1/events", tok, `{"trigger_type": "demo.tick", "payload": {"n": 2}}`); code != http.StatusCreated {
		t.Fatalf("/api/v1/events with trigger_type: %d, want 201", code)
	}
	if code, _ := post(t, url, "wrong", `{"trigger_ref": "demo.tick", "payload": {}}`); code != http.StatusUnauthorized {
		t.Errorf("bad token: %d, want 401", code)
	}
	if code, _ := post(t, url, "", `{"trigger_ref": "demo.tick", "payload": {}}`); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := post(t, url, tok, `{"trigger_ref": "core.webhook", "payload": {}}`); code != http.StatusForbidden {
		t.Errorf("another sensor's trigger: %d, want 403", code)
	}
	big := fmt.Sprintf(`{"trigger_ref": "demo.tick", "payload": {"x": %q}}`, strings.Repeat("a", supervise.MaxEventBytes))
	if code, _ := post(t, url, tok, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("payload over 64 KiB: %d, want 413", code)
	}
	// Burst 3: two accepted above, one more, then 429.
	if code, _ := post(t, url, tok, `{"trigger_ref": "demo.tick", "payload": {"n": 3}}`); code != http.StatusCreated {
		t.Fatalf("third event: %d, want 201", code)
	}
	if code, _ := post(t, url, tok, `{"trigger_ref": "demo.tick", "payload": {"n": 4}}`); code != http.StatusTooManyRequests {
		t.Errorf("over the rate limit: %d, want 429", code)
	}

	// A fresh grant with room, then the assignment moves on: 409, and the
	// supervisor is told to stop the process.
	ep2 := supervise.NewEndpoint(Writer{Pool: f.pool}, supervise.EndpointOptions{
		OnStale: func(x fence.Fence) { staleMu.Lock(); staleFences = append(staleFences, x); staleMu.Unlock() }})
	if err := ep2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep2.Close(context.Background()) })
	tok2 := ep2.Grant(f.fence, f.sensor, f.ref, []supervise.Trigger{f.trigger})
	f.takeOver(t)
	if code, _ := post(t, ep2.URL()+"/events", tok2, `{"trigger_ref": "demo.tick", "payload": {"n": 5}}`); code != http.StatusConflict {
		t.Errorf("after a takeover: %d, want 409", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		staleMu.Lock()
		n := len(staleFences)
		staleMu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnStale called %d times, want 1", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.count(t, "true"); n != 3 {
		t.Errorf("%d events recorded, want the 3 accepted", n)
	}
	ep.Revoke(tok)
	if code, _ := post(t, url, tok, `{"trigger_ref": "demo.tick", "payload": {}}`); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", code)
	}
}

func TestEndpointRefusesNonLoopback(t *testing.T) {
	ep := supervise.NewEndpoint(Writer{}, supervise.EndpointOptions{Addr: "0.0.0.0:0"})
	if err := ep.Start(); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("Start on 0.0.0.0 = %v, want a refusal", err)
	}
}

func TestBuiltinTimerWritesUntilTakenOver(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "core.sensor.builtin", "interval", `{"interval_seconds": 0.1}`)
	store := NewStore(f.db, nil)
	lost := make(chan fence.Fence, 1)
	sup := supervise.New(nil, store, nil, supervise.Options{OnLost: func(x fence.Fence) { lost <- x }})
	ctx := context.Background()
	sup.Reconcile(ctx, []supervise.Assignment{{Fence: f.fence, Sensor: supervise.Sensor{
		ID: f.sensor, Ref: f.ref, RuntimeRef: supervise.BuiltinRuntimeRef, Entrypoint: "interval",
		Config: map[string]any{"interval_seconds": 0.1}, Triggers: []supervise.Trigger{f.trigger}}}})

	deadline := time.Now().Add(10 * time.Second)
	for f.count(t, "source_ref = $1", f.ref) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the interval timer wrote fewer than 3 events in 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The start bumped the generation: events carry generation 2.
	if n := f.count(t, "source_generation <> 2"); n != 0 {
		t.Fatalf("%d events with a generation other than the run's (2)", n)
	}
	f.takeOver(t)
	var takeoverAt time.Time
	if err := f.pool.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&takeoverAt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the runner did not notice the takeover within 10s")
	}
	fences := sup.StopAll()
	if len(fences) != 1 {
		t.Fatalf("StopAll returned %d fences, want 1", len(fences))
	}
	if n := f.count(t, "source_generation = 2 AND created > $1", takeoverAt); n != 0 {
		t.Fatalf("%d events of the old generation created after the takeover", n)
	}
	var buf bytes.Buffer
	if err := List(ctx, f.db, Filter{Sensor: f.ref}, func(e Event) error {
		fmt.Fprintln(&buf, e.TriggerRef)
		return nil
	}); err != nil || !strings.Contains(buf.String(), "demo.tick") {
		t.Fatalf("List = %v, %q", err, buf.String())
	}
}

// TestBatchWriterChecksEachFence sends events of a current and of a stale
// fence at once: the batch they share writes only the current ones.
func TestBatchWriterChecksEachFence(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "core.sensor.builtin", "interval", `{"interval_seconds": 1}`)
	bw := NewBatchWriter(f.db, 1, false)
	t.Cleanup(bw.Close)
	var wg sync.WaitGroup
	var mu sync.Mutex
	okN, staleN := 0, 0
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := f.event(fmt.Sprintf(`{"i": %d}`, i))
			if i%2 == 1 {
				ev.Fence.Generation = 7
			}
			_, err := bw.WriteEvent(context.Background(), ev)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && i%2 == 0:
				okN++
			case errors.Is(err, fence.ErrStale) && i%2 == 1:
				staleN++
			default:
				t.Errorf("event %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if okN != 100 || staleN != 100 {
		t.Fatalf("%d written, %d refused; want 100 and 100", okN, staleN)
	}
	if n := f.count(t, "source_generation = 1"); n != 100 {
		t.Fatalf("%d events in the table, want 100", n)
	}
}
