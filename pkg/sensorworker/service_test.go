package sensorworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/testsupport"
	"github.com/attune-automation/attunectl/pkg/workers"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// logBuffer collects the service's logs for assertions.
type logBuffer = testsupport.SyncBuffer

// detector returns the results in order, repeating the last one.
type detector struct {
	mu      sync.Mutex
	results []detect.Result
	calls   int
}

func (d *detector) Detect(context.Context, *database.DB) (detect.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.results[min(d.calls, len(d.results)-1)]
	d.calls++
	return r, nil
}

func result(names ...string) detect.Result {
	return detect.Result{Source: detect.SourceDatabase, Available: names, Versions: map[string]string{}}
}

type harness struct {
	t     *testing.T
	db    *dbtest.DB
	svc   *Service
	clock *fakeClock
	logs  *logBuffer
	det   *detector
}

const interval = time.Second

func newHarness(t *testing.T, cfg Config, results ...detect.Result) *harness {
	t.Helper()
	h := &harness{t: t, db: dbtest.New(t), clock: newFakeClock(), logs: &logBuffer{}, det: &detector{results: results}}
	if len(results) == 0 {
		h.det.results = []detect.Result{result("shell")}
	}
	if cfg.Name == "" {
		cfg.Name = "sensor-test"
	}
	if cfg.Host == "" {
		cfg.Host = "test-host"
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = interval
	}
	cfg.Version = "9.9.9"
	svc, err := New(cfg, Options{
		Connect: func(ctx context.Context) (*database.DB, error) {
			return database.Open(ctx, database.Options{URL: h.db.URL, Schema: h.db.Schema})
		},
		Detect: h.det.Detect,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:  h.clock,
		Rand:   func() float64 { return 0.999 },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.svc = svc
	t.Cleanup(func() { _ = svc.Stop() })
	return h
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.svc.Start(context.Background()); err != nil {
		h.t.Fatalf("Start: %v\nlogs:\n%s", err, h.logs)
	}
}

type row struct {
	ID            int64
	Status        string
	Instance      string
	LastHeartbeat time.Time
	Capabilities  map[string]any
}

func (h *harness) row() (row, bool) {
	h.t.Helper()
	var r row
	var caps []byte
	err := h.db.Pool.QueryRow(context.Background(), `SELECT id, status::text, coalesce(meta->>'instance_id', ''), last_heartbeat, capabilities
		FROM worker WHERE name = 'sensor-test'`).Scan(&r.ID, &r.Status, &r.Instance, &r.LastHeartbeat, &caps)
	if err != nil {
		return r, false
	}
	_ = json.Unmarshal(caps, &r.Capabilities)
	return r, true
}

func (h *harness) mustRow() row {
	h.t.Helper()
	r, ok := h.row()
	if !ok {
		h.t.Fatalf("no worker row sensor-test\nlogs:\n%s", h.logs)
	}
	return r
}

// tick advances the clock by d and waits until the loops are asleep again
// (n timers pending after at least one new timer was made per fired timer).
func (h *harness) tick(d time.Duration, fired, pending int) {
	h.t.Helper()
	before := h.clock.Created()
	h.clock.Advance(d)
	h.clock.waitTimers(h.t, before+fired, pending)
}

func (h *harness) exec(sql string, args ...any) {
	h.t.Helper()
	if _, err := h.db.Pool.Exec(context.Background(), sql, args...); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
}

func TestServiceRegistersAndHeartbeatsOnTheClock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{}, result("python", "shell"))
	h.start()
	r := h.mustRow()
	if r.Status != "active" || fmt.Sprint(r.Capabilities["runtimes"]) != "[python shell]" || r.Capabilities["sensor_version"] != "9.9.9" {
		t.Fatalf("row after Start = %+v", r)
	}
	if got := testCounter(h.svc.metrics.heartbeats); got != 1 {
		t.Errorf("heartbeats after Start = %v; want 1 (the first beat right after registering)", got)
	}
	h.clock.waitTimers(t, 1, 1) // the heartbeat loop sleeps
	if p := h.clock.Pending(); len(p) != 1 || p[0] != interval {
		t.Fatalf("pending timers = %v; want one heartbeat interval", p)
	}
	for i := 2; i <= 3; i++ {
		prev := h.mustRow().LastHeartbeat
		h.tick(interval, 1, 1)
		if got := testCounter(h.svc.metrics.heartbeats); got != float64(i) {
			t.Errorf("heartbeats = %v; want %d", got, i)
		}
		if now := h.mustRow().LastHeartbeat; !now.After(prev) {
			t.Errorf("last_heartbeat did not advance: %v -> %v", prev, now)
		}
	}
	if ok, why := h.svc.Ready(); !ok {
		t.Errorf("Ready = false (%s); want true", why)
	}
	if !strings.Contains(h.logs.String(), `msg="registered sensor worker"`) || !strings.Contains(h.logs.String(), "level=DEBUG msg=heartbeat") {
		t.Errorf("logs lack registration or heartbeat lines:\n%s", h.logs)
	}

	if err := h.svc.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if r := h.mustRow(); r.Status != "inactive" {
		t.Errorf("status after Stop = %s; want inactive", r.Status)
	}
	if err := h.svc.Stop(); err != nil {
		t.Errorf("second Stop = %v", err)
	}
	if ok, _ := h.svc.Ready(); ok {
		t.Errorf("Ready after Stop = true")
	}
}

func TestServiceRetriesFailedHeartbeatsWithBackoff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	h.start()
	h.clock.waitTimers(t, 1, 1)

	// Break the heartbeat statement: the table is gone for a while.
	h.exec(`ALTER TABLE worker RENAME TO worker_away`)
	h.tick(interval, 1, 1)
	h.tick(h.clock.Pending()[0], 1, 1)
	if got := testCounter(h.svc.metrics.failures); got != 2 {
		t.Fatalf("failures = %v; want 2\nlogs:\n%s", got, h.logs)
	}
	// Backoff: base interval/4, doubled, capped at the interval; jitter
	// (Rand 0.999) keeps it just under the ceiling.
	if p := h.clock.Pending(); len(p) != 1 || p[0] <= interval/4 || p[0] > interval/2 {
		t.Errorf("third retry waits %v; want (%s, %s]", p, interval/4, interval/2)
	}
	for range 4 {
		h.tick(h.clock.Pending()[0], 1, 1)
	}
	if p := h.clock.Pending(); p[0] > interval {
		t.Errorf("retry waits %v, more than the interval %s", p[0], interval)
	}
	if !strings.Contains(h.logs.String(), `level=ERROR msg="heartbeat failed; retrying"`) {
		t.Errorf("failures not logged at error level:\n%s", h.logs)
	}
	select {
	case <-h.svc.Done():
		t.Fatalf("service stopped on a database error: %v", h.svc.Err())
	default:
	}
	// More than two intervals without a successful heartbeat: not ready.
	h.tick(h.clock.Pending()[0], 1, 1)
	if ok, why := h.svc.Ready(); ok || !strings.Contains(why, "more than two intervals") {
		t.Errorf("Ready = %v (%s); want not ready", ok, why)
	}

	h.exec(`ALTER TABLE worker_away RENAME TO worker`)
	before := testCounter(h.svc.metrics.heartbeats)
	h.tick(h.clock.Pending()[0], 1, 1)
	if got := testCounter(h.svc.metrics.heartbeats); got != before+1 {
		t.Fatalf("heartbeats = %v after the table came back; want %v\nlogs:\n%s", got, before+1, h.logs)
	}
	if p := h.clock.Pending(); p[0] != interval {
		t.Errorf("after a success the loop waits %v; want the interval", p[0])
	}
	if !strings.Contains(h.logs.String(), `msg="heartbeat succeeded again"`) {
		t.Errorf("recovery not logged:\n%s", h.logs)
	}
	if ok, why := h.svc.Ready(); !ok {
		t.Errorf("Ready = false (%s) after recovery", why)
	}
}

func TestServiceReRegistersPrunedRow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	h.start()
	h.clock.waitTimers(t, 1, 1)
	old := h.mustRow()
	h.exec(`DELETE FROM worker`)
	h.tick(interval, 1, 1)
	r := h.mustRow()
	if r.ID == old.ID || r.Status != "active" || r.Instance != old.Instance {
		t.Errorf("after a prune: row %+v (was %+v); want a new active row of the same instance", r, old)
	}
	if got := testCounter(h.svc.metrics.registrations); got != 2 {
		t.Errorf("registrations = %v; want 2", got)
	}
	if !strings.Contains(h.logs.String(), "registering again") {
		t.Errorf("re-registration not logged:\n%s", h.logs)
	}
}

func TestServiceStopsWhenTakenOver(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	h.start()
	h.clock.waitTimers(t, 1, 1)

	db, err := database.Open(context.Background(), database.Options{URL: h.db.URL, Schema: h.db.Schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other := workers.NewRegistration(db, workers.RegistrationConfig{Name: "sensor-test", Host: "other-host",
		Instance: workers.Instance{ID: "other-instance", Hostname: "other-host"}})
	if _, err := other.Register(context.Background(), workers.RegisterOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(interval)
	select {
	case <-h.svc.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("service did not stop after its row was taken over\nlogs:\n%s", h.logs)
	}
	if err := h.svc.Err(); !errors.Is(err, workers.ErrTakenOver) {
		t.Errorf("Err = %v; want ErrTakenOver", err)
	}
	if err := h.svc.Stop(); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if r := h.mustRow(); r.Status != "active" || r.Instance != "other-instance" {
		t.Errorf("the winner's row changed: %+v", r)
	}
}

func TestServiceReverifiesRuntimes(t *testing.T) {
	t.Parallel()
	const every = 5 * time.Minute
	second := result("node.js", "shell")
	second.Versions = map[string]string{"node.js": "20.1.0"}
	second.Runtimes = []detect.RuntimeResult{{Ref: "core.sensor.python", Name: "Python", Reason: "python3: not found on PATH"}}
	h := newHarness(t, Config{HeartbeatInterval: every, ReverifyInterval: every}, result("python", "shell"), second)
	h.start()
	h.exec(`UPDATE worker SET capabilities = capabilities || '{"zone": "eu-1"}'`)
	h.clock.waitTimers(t, 2, 2)

	h.tick(every, 2, 2) // heartbeat and re-verification both fire
	r := h.mustRow()
	if fmt.Sprint(r.Capabilities["runtimes"]) != "[node.js shell]" || fmt.Sprint(r.Capabilities["runtime_versions"]) != "map[node.js:20.1.0]" {
		t.Errorf("capabilities after re-verification = %v", r.Capabilities)
	}
	if r.Capabilities["zone"] != "eu-1" {
		t.Errorf("a key another tool wrote was lost: %v", r.Capabilities)
	}
	logs := h.logs.String()
	for _, want := range []string{`msg="runtimes changed; capabilities updated"`, "added=[node.js]", "removed=[python]",
		`msg="runtime no longer available" ref=core.sensor.python name=python reason="python3: not found on PATH"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if v := testGauge(t, h.svc, `attunectl_sensor_runtime_available{runtime="python"}`); v != "0" {
		t.Errorf("python gauge = %s; want 0", v)
	}
	if v := testGauge(t, h.svc, `attunectl_sensor_runtime_available{runtime="node.js"}`); v != "1" {
		t.Errorf("node.js gauge = %s; want 1", v)
	}

	// Unchanged: no write.
	h.exec(`UPDATE worker SET capabilities = capabilities || '{"runtimes": ["tampered"]}'`)
	h.tick(every, 2, 2)
	if r := h.mustRow(); fmt.Sprint(r.Capabilities["runtimes"]) != "[tampered]" {
		t.Errorf("an unchanged re-verification rewrote the capabilities: %v", r.Capabilities)
	}
}

func TestServiceWaitsForDatabase(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "unix", Err: syscall.ECONNREFUSED}
	t.Run("until it is up", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Config{WaitForDatabase: time.Minute})
		connect := h.svc.opts.Connect
		attempts := 0
		h.svc.opts.Connect = func(ctx context.Context) (*database.DB, error) {
			if attempts++; attempts <= 3 {
				return nil, refused
			}
			return connect(ctx)
		}
		done := make(chan error, 1)
		go func() { done <- h.svc.Start(context.Background()) }()
		for i := 0; i < 3; i++ {
			h.clock.waitTimers(t, i+1, 1)
			h.clock.Advance(5 * time.Second)
		}
		if err := <-done; err != nil {
			t.Fatalf("Start = %v", err)
		}
		if attempts != 4 || h.mustRow().Status != "active" {
			t.Errorf("attempts = %d; want 4 and a registered row", attempts)
		}
		if !strings.Contains(h.logs.String(), `msg="database not reachable; retrying" while=connecting attempt=1`) {
			t.Errorf("waiting not logged:\n%s", h.logs)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Config{WaitForDatabase: 2 * time.Second})
		h.svc.opts.Connect = func(context.Context) (*database.DB, error) { return nil, refused }
		done := make(chan error, 1)
		go func() { done <- h.svc.Start(context.Background()) }()
		var err error
		for err == nil {
			select {
			case err = <-done:
			case <-time.After(time.Millisecond):
				h.clock.Advance(100 * time.Millisecond)
			}
		}
		if !strings.Contains(err.Error(), "gave up after waiting 2s for the database") {
			t.Errorf("Start = %v", err)
		}
	})
	t.Run("not for a permanent error", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Config{WaitForDatabase: time.Hour})
		h.svc.opts.Connect = func(context.Context) (*database.DB, error) {
			return nil, &database.SchemaError{Schema: "attune", Missing: []string{"worker table"}}
		}
		if err := h.svc.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "attunectl migrate up") {
			t.Errorf("Start = %v; want the schema error at once", err)
		}
	})
	t.Run("try once by default", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Config{})
		h.svc.opts.Connect = func(context.Context) (*database.DB, error) { return nil, refused }
		if err := h.svc.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "--wait-for-database") {
			t.Errorf("Start = %v; want a hint about --wait-for-database", err)
		}
	})
}

func TestServiceRefusesLiveHolder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{WaitForDatabase: time.Minute})
	db, err := database.Open(context.Background(), database.Options{URL: h.db.URL, Schema: h.db.Schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	holder := workers.NewRegistration(db, workers.RegistrationConfig{Name: "sensor-test", Host: "web2",
		Instance: workers.Instance{ID: "holder", Hostname: "web2", PID: 7}})
	if _, err := holder.Register(context.Background(), workers.RegisterOptions{}); err != nil {
		t.Fatal(err)
	}
	// Not retried, even with a wait budget: waiting does not free the name.
	err = h.svc.Start(context.Background())
	if !errors.Is(err, workers.ErrNameInUse) || !strings.Contains(err.Error(), "host web2 (pid 7)") {
		t.Fatalf("Start = %v; want ErrNameInUse naming web2", err)
	}
	if err := h.svc.Stop(); err != nil {
		t.Errorf("Stop after a refused start = %v", err)
	}
	if r := h.mustRow(); r.Instance != "holder" || r.Status != "active" {
		t.Errorf("the holder's row changed: %+v", r)
	}
}

func TestServiceOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	if err := h.svc.Once(context.Background()); err != nil {
		t.Fatalf("Once: %v", err)
	}
	if r := h.mustRow(); r.Status != "inactive" {
		t.Errorf("status after Once = %s; want inactive", r.Status)
	}
	if got := testCounter(h.svc.metrics.heartbeats); got != 1 {
		t.Errorf("heartbeats = %v; want 1", got)
	}
}

func TestServiceRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	h.clock.waitTimers(t, 1, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if r := h.mustRow(); r.Status != "inactive" {
		t.Errorf("status after Run returned = %s; want inactive", r.Status)
	}
}

func TestServiceMetricsAndHealthEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MetricsAddr: "127.0.0.1:0"}, result("python", "shell"))
	srv := httptest.NewServer(h.svc.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not registered yet") {
		t.Errorf("/readyz before Start = %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	h.start()
	if h.svc.MetricsAddr() == "" {
		t.Errorf("MetricsAddr is empty with Config.MetricsAddr set")
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz after Start = %d %q", code, body)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"attunectl_sensor_heartbeats_total 1",
		"attunectl_sensor_heartbeat_failures_total 0",
		"attunectl_sensor_seconds_since_last_heartbeat 0",
		`attunectl_sensor_runtime_available{runtime="python"} 1`,
		`attunectl_sensor_runtime_available{runtime="shell"} 1`,
		"attunectl_sensor_registered 1",
		`attunectl_sensor_info{host="test-host",name="sensor-test",version="9.9.9"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	h.clock.Advance(0)
	if err := h.svc.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz"); code != 503 {
		t.Errorf("/readyz after Stop = %d %q", code, body)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Options{Connect: func(context.Context) (*database.DB, error) { return nil, nil },
		Detect: func(context.Context, *database.DB) (detect.Result, error) { return detect.Result{}, nil }}
	for _, tc := range []struct {
		cfg  Config
		opts Options
		want string
	}{
		{Config{HeartbeatInterval: time.Second}, ok, "name is empty"},
		{Config{Name: "s"}, ok, "heartbeat_interval must be greater than 0"},
		{Config{Name: "s", HeartbeatInterval: time.Second, ReverifyInterval: -1}, ok, "reverify_interval"},
		{Config{Name: "s", HeartbeatInterval: time.Second, WaitForDatabase: -1}, ok, "--wait-for-database"},
		{Config{Name: "s", HeartbeatInterval: time.Second}, Options{}, "required"},
	} {
		if _, err := New(tc.cfg, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v; want an error with %q", tc.cfg, err, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	base, ceiling := 250*time.Millisecond, 2*time.Second
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}
	for i, w := range want {
		if got := backoffCeiling(i+1, base, ceiling); got != w {
			t.Errorf("backoffCeiling(%d) = %v; want %v", i+1, got, w)
		}
		if lo := backoff(i+1, base, ceiling, func() float64 { return 0 }); lo != w/2 {
			t.Errorf("backoff(%d) with jitter 0 = %v; want %v", i+1, lo, w/2)
		}
		if hi := backoff(i+1, base, ceiling, func() float64 { return 0.9999999 }); hi > w || hi < w*9/10 {
			t.Errorf("backoff(%d) with jitter 1 = %v; want about %v", i+1, hi, w)
		}
	}
	if got := backoffCeiling(1000, base, ceiling); got != ceiling {
		t.Errorf("backoffCeiling(1000) = %v; want the ceiling", got)
	}
}

func TestBuildCapabilities(t *testing.T) {
	res := detect.Result{Source: detect.SourceDatabase, Available: []string{"python", "shell"}, Versions: map[string]string{"python": "3.12.1"}}
	cfg := Config{HeartbeatInterval: 15 * time.Second, MaxConcurrentSensors: 20, Version: "1.0.0",
		ExtraCapabilities: map[string]any{"runtimes": []any{"ignored"}, "gpu": true, "sensor_version": "spoofed"}}
	b, err := json.Marshal(BuildCapabilities(cfg, res))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(b, &got)
	want := `map[detection_source:database gpu:true heartbeat_interval:15 max_concurrent_sensors:20 runtime_versions:map[python:3.12.1] runtimes:[python shell] sensor_version:1.0.0]`
	if fmt.Sprint(got) != want {
		t.Errorf("capabilities = %v\nwant %s", got, want)
	}
	b, _ = json.Marshal(BuildCapabilities(Config{}, detect.Result{Source: detect.SourceEnv}))
	if !strings.Contains(string(b), `"runtimes":[]`) {
		t.Errorf("no runtimes = %s; want an empty list, never null", b)
	}
}

func testCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// testGauge returns the value of one series as /metrics shows it.
func testGauge(t *testing.T, s *Service, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no series %s", series)
	return ""
}
