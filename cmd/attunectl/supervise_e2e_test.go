package main

// End-to-end tests of `sensor run` as a sensor worker that runs sensors:
// real binaries, real sensor processes (Python, sh) in the sandbox, real
// signals. Sensors are defined with pkg/sensors straight in the test's
// database; the workers are the built attunectl.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/sensors"
	"github.com/attune-automation/attunectl/pkg/sensorworker"
	"github.com/attune-automation/attunectl/pkg/supervise"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// superviseHB is the heartbeat interval of the supervision tests: the
// lease is three of them.
const superviseHB = time.Second

// readableDir makes a temporary directory every user can read (t.TempDir's
// parents are private to this user), for sensor programs that also run as
// nobody or a dynamic user.
func readableDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sensorProgram copies a sensor program of testdata/sensors into a
// directory every user can read, so that it also runs as nobody.
func sensorProgram(t *testing.T, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sensors", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := readableDir(t, "asens-")
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, src, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// defineSensor adds the sensors of a manifest to the database.
func defineSensor(t *testing.T, pool *pgxpool.Pool, manifest string) {
	t.Helper()
	ss, err := sensors.ParseManifest([]byte(manifest))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	db := &database.DB{Pool: pool, Schema: dbtest.Schema}
	if err := db.Introspect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := sensors.Add(context.Background(), db, ss, false); err != nil {
		t.Fatalf("adding sensors: %v", err)
	}
}

// worker starts `sensor run` for name with the supervision tests' interval.
func worker(t *testing.T, db *dbtest.DB, name string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"sensor", "run", "--name", name, "--host", "host-" + name,
		"--heartbeat-interval", superviseHB.String(), "--runtimes", "python,shell,built-in sensor"}, extra...)
	return start(t, dbEnv(t, db, "ATTUNE__SENSOR__STOP_TIMEOUT=2", "ATTUNE__LOG__LEVEL=debug"), args...)
}

// ownerEvent is the newest event of a sensor with the worker that held the
// generation it was written under.
type ownerEvent struct {
	ID         int64
	Worker     string
	Generation int64
	PID        int
	Created    time.Time
}

func latestEvent(t *testing.T, pool *pgxpool.Pool, ref string) (ownerEvent, bool) {
	t.Helper()
	var e ownerEvent
	var payload []byte
	err := pool.QueryRow(context.Background(), `
		SELECT e.id, coalesce(w.name, ''), e.source_generation, e.payload, e.created
		FROM event e
		LEFT JOIN sensor_ownership o ON o.workload = e.source_workload AND o.generation <= e.source_generation
		     AND o.started_at <= e.created AND (o.ended_at IS NULL OR o.ended_at >= e.created)
		LEFT JOIN worker w ON w.id = o.worker
		WHERE e.source_ref = $1 ORDER BY e.id DESC LIMIT 1`, ref).Scan(&e.ID, &e.Worker, &e.Generation, &payload, &e.Created)
	if err != nil {
		return e, false
	}
	var p struct {
		PID int `json:"pid"`
	}
	_ = json.Unmarshal(payload, &p)
	e.PID = p.PID
	return e, true
}

// holder is the worker that holds a sensor now, and the generation.
func holder(t *testing.T, pool *pgxpool.Pool, ref string) (string, int64) {
	t.Helper()
	var name string
	var gen int64
	_ = pool.QueryRow(context.Background(), `
		SELECT coalesce(w.name, ''), a.generation FROM sensor s
		JOIN sensor_workload sw ON sw.sensor = s.id JOIN sensor_workload_assignment a ON a.workload = sw.id
		LEFT JOIN worker w ON w.id = a.worker AND a.lease_expires_at > clock_timestamp()
		WHERE s.ref = $1`, ref).Scan(&name, &gen)
	return name, gen
}

func processGone(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return os.IsNotExist(err)
}

const tickerManifest = `
ref: demo.ticker
label: Python ticker
runtime: core.sensor.python
entrypoint: %s
triggers: [{ref: demo.tick}]
`

// TestPythonSensorFailsOverAfterKill: the owner of a Python sensor is
// killed with SIGKILL; the other worker's sensor process emits within the
// lease (three intervals) plus an interval.
func TestPythonSensorFailsOverAfterKill(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	program := sensorProgram(t, "ticker.py")
	defineSensor(t, db.Pool, fmt.Sprintf(tickerManifest, program))
	w1 := worker(t, db, "fo-1")
	waitUntil(t, w1, 30*time.Second, "fo-1's ticker to emit", func() bool {
		e, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok && e.Worker == "fo-1"
	})
	// fo-1's sensor process, found on the host by its program's path (the
	// pid in its events is the one of its box's PID namespace).
	oldProcs := testsupport.ProcessesWith(program)
	if len(oldProcs) != 1 {
		t.Fatalf("want fo-1's one sensor process, found %v", oldProcs)
	}
	w2 := worker(t, db, "fo-2")
	waitRegistered(t, w2, db.Pool, "fo-2")
	old, _ := latestEvent(t, db.Pool, "demo.ticker")
	w1.signal(t, syscall.SIGKILL)
	killed := time.Now()
	w1.wait(t, 10*time.Second)
	waitUntil(t, w2, 30*time.Second, "fo-2's ticker to emit", func() bool {
		e, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok && e.Worker == "fo-2" && e.Generation > old.Generation
	})
	gap := time.Since(killed)
	// The claim is placement's part: within the lease (three intervals)
	// plus one interval of the kill. Starting the Python process and its
	// first event follow; both are reported.
	var claimedAt time.Time
	if err := db.Pool.QueryRow(context.Background(), `SELECT o.started_at FROM sensor_ownership o JOIN worker w ON w.id = o.worker
		WHERE w.name = 'fo-2' ORDER BY o.id DESC LIMIT 1`).Scan(&claimedAt); err != nil {
		t.Fatalf("ledger: no span of fo-2: %v", err)
	}
	var claimAfter float64
	if err := db.Pool.QueryRow(context.Background(), `SELECT extract(epoch FROM $1::timestamptz - o.ended_at) FROM sensor_ownership o
		JOIN worker w ON w.id = o.worker WHERE w.name = 'fo-1' AND o.ended_at IS NOT NULL ORDER BY o.id DESC LIMIT 1`, claimedAt).Scan(&claimAfter); err != nil {
		t.Fatal(err)
	}
	t.Logf("events resumed from the other worker %s after the kill; claimed %.3fs after fo-1's lease ran out (lease %s, interval %s)",
		gap.Round(time.Millisecond), claimAfter, 3*superviseHB, superviseHB)
	if claimAfter > (superviseHB + time.Second).Seconds() {
		t.Errorf("fo-2 claimed the sensor %.3fs after the lease ran out; want within an interval (%s, plus 1s of slack)", claimAfter, superviseHB)
	}
	// The killed worker's sensor process went with it (the sandbox's
	// helper dies with its parent and takes its command along).
	waitFor(t, 10*time.Second, "the killed worker's sensor process to be gone", func() bool { return processGone(oldProcs[0]) })
	var reason string
	if err := db.Pool.QueryRow(context.Background(), `SELECT o.end_reason FROM sensor_ownership o JOIN worker w ON w.id = o.worker
		WHERE w.name = 'fo-1' AND o.ended_at IS NOT NULL ORDER BY o.id DESC LIMIT 1`).Scan(&reason); err != nil || reason != "expired" {
		t.Errorf("ledger: fo-1's span ended with %q (%v); want expired", reason, err)
	}
	stopSensor(t, w2, db.Pool, "fo-2")
}

// TestSIGSTOPOwnerWritesNoEventAfterTakeover: the owner is suspended past
// its lease; another worker takes the sensor over; when the owner resumes,
// its renewal fails, it stops its sensor process within the stop timeout,
// and not one event of its generation is created after the takeover, even
// though its process kept running and posting all along.
func TestSIGSTOPOwnerWritesNoEventAfterTakeover(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	program := sensorProgram(t, "ticker.py")
	defineSensor(t, db.Pool, fmt.Sprintf(tickerManifest, program))
	w1 := worker(t, db, "st-1")
	waitUntil(t, w1, 30*time.Second, "st-1's ticker to emit", func() bool {
		e, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok && e.Worker == "st-1"
	})
	old, _ := latestEvent(t, db.Pool, "demo.ticker")
	oldProcs := testsupport.ProcessesWith(program)
	if len(oldProcs) != 1 {
		t.Fatalf("want st-1's one sensor process, found %v", oldProcs)
	}
	w2 := worker(t, db, "st-2")
	waitRegistered(t, w2, db.Pool, "st-2")
	w1.signal(t, syscall.SIGSTOP)
	waitUntil(t, w2, 30*time.Second, "st-2 to take the sensor over and emit", func() bool {
		e, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok && e.Worker == "st-2"
	})
	var takeover time.Time
	if err := db.Pool.QueryRow(context.Background(), `SELECT o.ended_at FROM sensor_ownership o JOIN worker w ON w.id = o.worker
		WHERE w.name = 'st-1' AND o.ended_at IS NOT NULL ORDER BY o.id DESC LIMIT 1`).Scan(&takeover); err != nil {
		t.Fatalf("ledger: st-1's span has not ended: %v", err)
	}
	w1.signal(t, syscall.SIGCONT)
	resumed := time.Now()
	waitFor(t, 2*time.Second+2*superviseHB+5*time.Second, "st-1's old sensor process to be stopped", func() bool { return processGone(oldProcs[0]) })
	t.Logf("st-1's old process gone %s after SIGCONT", time.Since(resumed).Round(time.Millisecond))
	// Let the resumed worker drain whatever its process had queued.
	time.Sleep(2 * superviseHB)
	var late int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM event WHERE source_ref = 'demo.ticker'
		AND source_generation <= $1 AND created >= $2`, old.Generation, takeover).Scan(&late); err != nil {
		t.Fatal(err)
	}
	if late != 0 {
		t.Fatalf("%d events of st-1's generation (<= %d) created after the takeover at %s", late, old.Generation, takeover)
	}
	if !strings.Contains(w1.stderr.String(), "no longer ours") {
		t.Errorf("st-1 did not log that it dropped the sensor:\n%s", w1.stderr)
	}
	stopSensor(t, w1, db.Pool, "st-1")
	stopSensor(t, w2, db.Pool, "st-2")
}

// TestCrashLoopQuarantinedAndBackoffSurvivesMove: a sensor that exits at
// once is restarted with backoff and quarantined after
// sensor.quarantine_after consecutive failures, counted on the workload:
// failures on one worker carry over to the next.
func TestCrashLoopQuarantinedAndBackoffSurvivesMove(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	defineSensor(t, db.Pool, fmt.Sprintf(`
ref: demo.crash
label: Crashes
runtime: core.sensor.shell
entrypoint: %s
triggers: [{ref: demo.crashed}]
`, sensorProgram(t, "crash.sh")))
	failures := func() (n int, state string) {
		_ = db.Pool.QueryRow(context.Background(), `SELECT coalesce(consecutive_failures, 0), coalesce(state, '') FROM sensor_workload_state`).Scan(&n, &state)
		return
	}
	w1 := worker(t, db, "cr-1", "--label", "zone=a")
	waitUntil(t, w1, 30*time.Second, "two failures on cr-1", func() bool { n, _ := failures(); return n >= 2 })
	stopSensor(t, w1, db.Pool, "cr-1")
	n1, _ := failures()
	w2 := worker(t, db, "cr-2")
	waitUntil(t, w2, 60*time.Second, "the sensor to be quarantined on cr-2", func() bool { _, st := failures(); return st == "quarantined" })
	n2, _ := failures()
	if n2 != 5 || n1 < 2 {
		t.Errorf("failures: %d on cr-1, %d when quarantined; want the count to go on from cr-1's to 5", n1, n2)
	}
	l, err := sensors.List(context.Background(), db.Handle(t), sensors.ListOptions{})
	if err != nil || len(l.Sensors) != 1 || l.Sensors[0].State != sensors.StateQuarantined || !strings.Contains(l.Sensors[0].Reason, "exit 3") {
		t.Fatalf("sensor list: %+v (%v); want demo.crash quarantined with its exit status", l.Sensors, err)
	}
	stopSensor(t, w2, db.Pool, "cr-2")
}

// TestSensorDaemonDoesNotOutliveTheSensor: a sensor that starts a setsid
// daemon; when the worker stops, the daemon is gone too.
func TestSensorDaemonDoesNotOutliveTheSensor(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	defineSensor(t, db.Pool, fmt.Sprintf(`
ref: demo.daemon
label: Leaves a daemon
runtime: core.sensor.shell
entrypoint: %s
triggers: [{ref: demo.daemon_tick}]
`, sensorProgram(t, "daemon.sh")))
	daemons := func() []int { return testsupport.ProcessesWith("987654") }
	w := worker(t, db, "dm-1")
	waitUntil(t, w, 30*time.Second, "the sensor's setsid daemon to start", func() bool { return len(daemons()) > 0 })
	stopSensor(t, w, db.Pool, "dm-1")
	if left := daemons(); len(left) > 0 {
		t.Fatalf("daemon processes %v outlived their sensor", left)
	}
}

// TestSensorProcessRunsAsRunAsUser: as root with sensor.run_as nobody, the
// sensor process runs as nobody.
func TestSensorProcessRunsAsRunAsUser(t *testing.T) {
	t.Parallel()
	testsupport.RequireRoot(t, "it checks that sensors run as sensor.run_as, another user")
	db := dbtest.New(t)
	program := sensorProgram(t, "ticker.py")
	defineSensor(t, db.Pool, fmt.Sprintf(tickerManifest, program))
	args := []string{"sensor", "run", "--name", "ra-1", "--heartbeat-interval", superviseHB.String(), "--runtimes", "python"}
	// The interpreter must be one nobody can run: not root's own (a pyenv
	// under /root, say).
	e := dbEnv(t, db, "ATTUNE__SENSOR__RUN_AS=nobody")
	for i, kv := range e {
		if strings.HasPrefix(kv, "PATH=") {
			e[i] = "PATH=/usr/local/bin:/usr/bin:/bin"
		}
	}
	w := start(t, e, args...)
	waitUntil(t, w, 30*time.Second, "the ticker to emit", func() bool {
		e, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok && e.PID > 0
	})
	procs := testsupport.ProcessesWith(program)
	if len(procs) != 1 {
		t.Fatalf("want the one sensor process, found %v", procs)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(procs[0]) + "/status")
	if err != nil {
		t.Fatalf("reading the sensor process's status: %v", err)
	}
	var uid string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	if uid != "65534" {
		t.Fatalf("the sensor process runs as uid %s, want nobody (65534)", uid)
	}
	stopSensor(t, w, db.Pool, "ra-1")
}

// TestTourOnEmbeddedDefault is the README's tour on the embedded default:
// add a built-in interval timer of 1 s, run a worker, and `event list`
// shows its ticks.
func TestTourOnEmbeddedDefault(t *testing.T) {
	t.Parallel()
	e := embeddedEnv(t)
	dir := t.TempDir()
	manifest := `
ref: demo.every_second
label: Every second
runtime: core.sensor.builtin
entrypoint: interval
config: {interval_seconds: 1}
triggers: [demo.second]
`
	if res := runIn(t, dir, e, manifest, "sensor", "add", "-f", "-"); res.Code != 0 {
		t.Fatalf("sensor add: exit %d\n%s", res.Code, res.Stderr)
	}
	w := start(t, e, "sensor", "run", "--name", "tour-1", "--heartbeat-interval", "1s", "--runtimes", "built-in sensor")
	waitUntil(t, w, 30*time.Second, "three ticks in event list", func() bool {
		res := run(t, e, "event", "list", "--sensor", "demo.every_second")
		return res.Code == 0 && strings.Count(res.Stdout, "demo.second") >= 3
	})
	res := run(t, e, "sensor", "list", "demo.every_second", "-o", "json")
	if !strings.Contains(res.Stdout, `"worker": "tour-1"`) || !strings.Contains(res.Stdout, `"state": "running"`) {
		t.Errorf("sensor list while tour-1 runs it:\n%s%s", res.Stdout, res.Stderr)
	}
	w.signal(t, syscall.SIGINT)
	if code := w.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("sensor run: exit %d after SIGINT\n%s", code, w.stderr)
	}
	res = run(t, e, "event", "list", "--sensor", "demo.every_second", "-o", "json")
	var evs []struct {
		TriggerRef string          `json:"trigger_ref"`
		SourceRef  string          `json:"source_ref"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &evs); err != nil || len(evs) < 3 {
		t.Fatalf("event list -o json: %d events, %v\n%s", len(evs), err, res.Stdout)
	}
	if evs[0].TriggerRef != "demo.second" || evs[0].SourceRef != "demo.every_second" || !strings.Contains(string(evs[0].Payload), "scheduled_time") {
		t.Errorf("first event: %+v", evs[0])
	}
}

var eventEndpointURL = regexp.MustCompile(`event_endpoint=(http://127\.0\.0\.1:\d+)`)

// TestEndpointsCannotBeStarved: a local user who opens thousands of idle
// connections to the event endpoint and to /healthz neither exhausts the
// worker's descriptors nor keeps its sensor from posting or a probe from
// being answered within a second.
func TestEndpointsCannotBeStarved(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	defineSensor(t, db.Pool, fmt.Sprintf(tickerManifest, sensorProgram(t, "ticker.py")))
	p := worker(t, db, "flood-1", "--metrics-addr", "127.0.0.1:0")
	waitUntil(t, p, 30*time.Second, "the ticker to emit", func() bool {
		_, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok
	})
	ep := eventEndpointURL.FindStringSubmatch(p.stderr.String())
	mu := metricsURL.FindStringSubmatch(p.stderr.String())
	if ep == nil || mu == nil {
		t.Fatalf("the endpoints are not logged:\n%s", p.stderr)
	}
	var hogs []net.Conn
	defer func() {
		for _, c := range hogs {
			c.Close()
		}
	}()
	for _, base := range []string{ep[1], mu[1]} {
		addr := strings.TrimPrefix(base, "http://")
		for range 1500 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dialing %s: %v", addr, err)
			}
			hogs = append(hogs, c)
		}
	}
	before, _ := latestEvent(t, db.Pool, "demo.ticker")
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	begin := time.Now()
	resp, err := client.Get(mu[1] + "/healthz")
	if err != nil {
		t.Fatalf("/healthz behind 1,500 idle connections: %v", err)
	}
	resp.Body.Close()
	t.Logf("/healthz answered in %s behind 1,500 idle connections", time.Since(begin).Round(time.Millisecond))
	waitUntil(t, p, 10*time.Second, "the ticker to keep posting", func() bool {
		e, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok && e.ID > before.ID+3
	})
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if limit := supervise.MaxEndpointConns + sensorworker.DefaultMetricsLimits.MaxConns + 64; len(fds) > limit {
		t.Errorf("the worker holds %d descriptors after 3,000 idle connections; the endpoints allow %d", len(fds), limit)
	}
}

// TestSensorInterpreterObeysTheAllowList: a sensor's interpreter is held
// to sensor.verification.allowed_binaries as a verification command is:
// with an empty list, a shell sensor never runs; it is quarantined at once
// with the reason.
func TestSensorInterpreterObeysTheAllowList(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	dir := readableDir(t, "aallow-")
	marker := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "touch.sh")
	if err := os.WriteFile(script, []byte("touch "+marker+"\nsleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	defineSensor(t, db.Pool, fmt.Sprintf("ref: demo.shell\nruntime: core.sensor.shell\nentrypoint: %s\ntriggers: [demo.never]\n", script))
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("sensor:\n  verification:\n    allowed_binaries: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := worker(t, db, "allow-1", "--config", cfg)
	waitUntil(t, p, 30*time.Second, "the sensor to be quarantined with the reason", func() bool {
		var reason string
		_ = db.Pool.QueryRow(context.Background(), `SELECT coalesce(last_reason, '') FROM sensor_workload_state WHERE state = 'quarantined'`).Scan(&reason)
		return strings.Contains(reason, "not in allowed_binaries")
	})
	if _, err := os.Stat(marker); err == nil {
		t.Error("the sensor ran although its interpreter is not allowed")
	}
}

// TestInheritedDescriptorsReachNoSensor: a descriptor attunectl inherits
// without close-on-exec (a shell's `9<secret`) does not reach the sensors
// it runs.
func TestInheritedDescriptorsReachNoSensor(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	dir := readableDir(t, "afd-")
	out := filepath.Join(dir, "fds")
	script := filepath.Join(dir, "fds.sh")
	// The sensor lists its own descriptors into a file.
	if err := os.WriteFile(script, []byte("ls /proc/$$/fd > "+out+".tmp && mv "+out+".tmp "+out+"\nsleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	defineSensor(t, db.Pool, fmt.Sprintf("ref: demo.fds\nruntime: core.sensor.shell\nentrypoint: %s\ntriggers: [demo.never]\n", script))
	secret, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Close()
	var extra []*os.File
	for range 7 { // the child's descriptors 3 … 9, none close-on-exec there
		extra = append(extra, secret)
	}
	cmd := exec.Command(binary(t), "sensor", "run", "--name", "fd-1", "--heartbeat-interval", superviseHB.String(), "--runtimes", "shell")
	cmd.Env = dbEnv(t, db)
	cmd.ExtraFiles = extra
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	var fds []byte
	for time.Now().Before(deadline) {
		if fds, err = os.ReadFile(out); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the sensor did not list its descriptors: %v\n%s", err, stderr.String())
	}
	for _, fd := range strings.Fields(string(fds)) {
		if n, _ := strconv.Atoi(fd); n > 2 && n <= 9 {
			t.Errorf("the sensor holds descriptor %d: %q", n, fds)
		}
	}
}

// TestEnableStartsAQuarantinedSensorOnItsOwner: `sensor enable` of a
// quarantined sensor whose owner is alive starts it again on that owner
// within a heartbeat interval or two, not at the owner's next restart.
func TestEnableStartsAQuarantinedSensorOnItsOwner(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	dir := readableDir(t, "aflaky-")
	okFile := filepath.Join(dir, "ok")
	script := filepath.Join(dir, "flaky.sh")
	if err := os.WriteFile(script, []byte("[ -e "+okFile+" ] || exit 3\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	defineSensor(t, db.Pool, fmt.Sprintf("ref: demo.flaky\nruntime: core.sensor.shell\nentrypoint: %s\ntriggers: [demo.never]\n", script))
	state := func() string {
		var st string
		_ = db.Pool.QueryRow(context.Background(), `SELECT coalesce(state, '') FROM sensor_workload_state`).Scan(&st)
		return st
	}
	e := dbEnv(t, db, "ATTUNE__SENSOR__QUARANTINE_AFTER=1", "ATTUNE__SENSOR__STOP_TIMEOUT=2")
	p := start(t, e, "sensor", "run", "--name", "en-1", "--heartbeat-interval", superviseHB.String(), "--runtimes", "shell")
	waitUntil(t, p, 30*time.Second, "the sensor to be quarantined", func() bool { return state() == "quarantined" })
	if err := os.WriteFile(okFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := run(t, e, "sensor", "enable", "demo.flaky"); res.Code != 0 {
		t.Fatalf("sensor enable: exit %d\n%s", res.Code, res.Stderr)
	}
	enabled := time.Now()
	waitUntil(t, p, 20*time.Second, "the sensor to run again on its owner", func() bool { return state() == "running" })
	if took := time.Since(enabled); took > 5*superviseHB {
		t.Errorf("the enabled sensor ran again after %s; the interval is %s", took, superviseHB)
	}
}

// TestNewSensorsClaimedAtOnce: sensors added while a worker idles (the
// default 30 s heartbeat, a share of 0 when it started) are claimed within
// a second or two of `sensor add`, not at its next balance check.
func TestNewSensorsClaimedAtOnce(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	e := dbEnv(t, db)
	p := start(t, e, "sensor", "run", "--name", "idle-1", "--runtimes", "built-in sensor")
	waitRegistered(t, p, db.Pool, "idle-1")
	time.Sleep(500 * time.Millisecond) // its first tick found nothing to claim
	for i := range 3 {
		manifest := fmt.Sprintf("ref: demo.t%d\nruntime: core.sensor.builtin\nentrypoint: interval\nconfig: {interval_seconds: 1}\ntriggers: [demo.tick%d]\n", i, i)
		if res := runIn(t, t.TempDir(), e, manifest, "sensor", "add", "-f", "-"); res.Code != 0 {
			t.Fatalf("sensor add: exit %d\n%s", res.Code, res.Stderr)
		}
	}
	added := time.Now()
	waitUntil(t, p, 30*time.Second, "the three sensors to be claimed", func() bool {
		var n int
		_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM sensor_workload_assignment WHERE worker IS NOT NULL`).Scan(&n)
		return n == 3
	})
	if took := time.Since(added); took > 3*time.Second {
		t.Errorf("the new sensors were claimed %s after sensor add; the worker was idle", took)
	}
}

// TestReplaceNeverTakesLiveLeases: `sensor run --replace` takes a live
// worker's name, never its unexpired leases: the old instance stops its
// sensor and releases it (or its lease expires), and only then does the
// new instance claim it. The ledger shows the spans one after the other,
// none ended by a takeover.
func TestReplaceNeverTakesLiveLeases(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	defineSensor(t, db.Pool, fmt.Sprintf(tickerManifest, sensorProgram(t, "ticker.py")))
	a := worker(t, db, "rp-1")
	waitUntil(t, a, 30*time.Second, "the first instance's ticker to emit", func() bool {
		e, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok && e.Worker == "rp-1"
	})
	b := worker(t, db, "rp-1", "--replace")
	a.wait(t, 15*time.Second)
	waitUntil(t, b, 30*time.Second, "the new instance's ticker to emit", func() bool {
		var n int
		_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM sensor_ownership WHERE ended_at IS NULL`).Scan(&n)
		return n == 1 && func() bool { h, _ := holder(t, db.Pool, "demo.ticker"); return h == "rp-1" }()
	})
	rows, err := db.Pool.Query(context.Background(), `SELECT worker_instance::text, started_at, ended_at, coalesce(end_reason, '')
		FROM sensor_ownership ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type span struct {
		instance   string
		start, end *time.Time
		reason     string
	}
	var spans []span
	for rows.Next() {
		var s span
		if err := rows.Scan(&s.instance, &s.start, &s.end, &s.reason); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, s)
	}
	if len(spans) < 2 {
		t.Fatalf("ledger has %d spans, want the old instance's and the new one's", len(spans))
	}
	for i, s := range spans {
		if s.reason == "taken_over" {
			t.Errorf("span %d (instance %s) ended by a takeover: the new instance took a live lease", i, s.instance)
		}
		if i > 0 && (spans[i-1].end == nil || s.start.Before(*spans[i-1].end)) {
			t.Errorf("span %d started before span %d ended: two owners at once", i, i-1)
		}
	}
	if spans[0].instance == spans[len(spans)-1].instance {
		t.Errorf("the sensor never moved to the new instance: %+v", spans)
	}
	stopSensor(t, b, db.Pool, "rp-1")
}
