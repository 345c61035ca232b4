package main

// End-to-end tests of `attunectl sensor run`: the real binary against a real
// PostgreSQL, with short heartbeat intervals. The first seven are the seed's
// integration tests, named after them.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// hb is the heartbeat interval of most tests here.
const hb = 200 * time.Millisecond

// sensorRun is `sensor run` for worker name with a short heartbeat interval.
func sensorRun(name string, extra ...string) []string {
	return append([]string{"sensor", "run", "--name", name, "--host", "host-" + name, "--heartbeat-interval", hb.String()}, extra...)
}

// sensorRow is the worker row as the tests inspect it.
type sensorRow struct {
	ID           int64
	Role, Type   string
	Status, Host string
	Capabilities struct {
		Runtimes             []string          `json:"runtimes"`
		MaxConcurrentSensors int               `json:"max_concurrent_sensors"`
		SensorVersion        string            `json:"sensor_version"`
		RuntimeVersions      map[string]string `json:"runtime_versions"`
		HeartbeatInterval    float64           `json:"heartbeat_interval"`
		DetectionSource      string            `json:"detection_source"`
	}
	Meta struct {
		InstanceID string `json:"instance_id"`
		PID        int    `json:"pid"`
		Hostname   string `json:"hostname"`
		StartedAt  string `json:"started_at"`
		Version    string `json:"version"`
	}
	LastHeartbeat time.Time
	// Age is now() - last_heartbeat by the database clock.
	Age time.Duration
}

func querySensorRow(pool *pgxpool.Pool, name string) (sensorRow, error) {
	var r sensorRow
	var caps, meta []byte
	var age float64
	err := pool.QueryRow(context.Background(), `
		SELECT id, worker_role::text, worker_type::text, coalesce(status::text, ''), coalesce(host, ''),
			coalesce(capabilities, 'null'), coalesce(meta, 'null'), coalesce(last_heartbeat, 'epoch'),
			coalesce(extract(epoch FROM now() - last_heartbeat)::float8, -1)
		FROM worker WHERE name = $1`, name).Scan(&r.ID, &r.Role, &r.Type, &r.Status, &r.Host, &caps, &meta, &r.LastHeartbeat, &age)
	if err != nil {
		return r, err
	}
	r.Age = time.Duration(age * float64(time.Second))
	if err := json.Unmarshal(caps, &r.Capabilities); err != nil {
		return r, err
	}
	return r, json.Unmarshal(meta, &r.Meta)
}

func readSensorRow(t testing.TB, pool *pgxpool.Pool, name string) sensorRow {
	t.Helper()
	r, err := querySensorRow(pool, name)
	if err != nil {
		t.Fatalf("reading worker %s: %v", name, err)
	}
	return r
}

// waitUntil polls cond like waitFor, but fails at once, with the process's
// output, when p exits first.
func waitUntil(t testing.TB, p *proc, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if p != nil && p.exited() {
			t.Fatalf("attunectl exited while waiting for %s\nstdout:\n%s\nstderr:\n%s", what, p.stdout, p.stderr)
		}
		if time.Now().After(deadline) {
			if p != nil {
				t.Fatalf("timed out after %s waiting for %s\nstderr:\n%s", d, what, p.stderr)
			}
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitRegistered waits until p's row is active with p's pid in meta.
func waitRegistered(t testing.TB, p *proc, pool *pgxpool.Pool, name string) sensorRow {
	t.Helper()
	var r sensorRow
	waitUntil(t, p, 20*time.Second, "worker "+name+" to register", func() bool {
		var err error
		r, err = querySensorRow(pool, name)
		return err == nil && r.Status == "active" && r.Meta.PID == p.cmd.Process.Pid
	})
	return r
}

// stopSensor sends SIGTERM and expects exit 0 and an inactive row.
func stopSensor(t testing.TB, p *proc, pool *pgxpool.Pool, name string) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM\nstderr:\n%s", code, p.stderr)
	}
	if r := readSensorRow(t, pool, name); r.Status != "inactive" {
		t.Fatalf("status %s after SIGTERM; want inactive", r.Status)
	}
}

func execSQL(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// 1. Sensor service startup registration.
func TestStartupRegistration(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	p := start(t, dbEnv(t, db), sensorRun("s1")...)
	r := waitRegistered(t, p, db.Pool, "s1")
	if r.Role != "sensor" || r.Type != "local" || r.Host != "host-s1" {
		t.Errorf("row: role %s, type %s, host %s; want sensor, local, host-s1", r.Role, r.Type, r.Host)
	}
	c := r.Capabilities
	for _, rt := range []string{"built-in sensor", "native", "shell"} { // always available
		if !slices.Contains(c.Runtimes, rt) {
			t.Errorf("runtimes %v lack %q", c.Runtimes, rt)
		}
	}
	if c.MaxConcurrentSensors != 10 || c.SensorVersion == "" || c.HeartbeatInterval != hb.Seconds() || c.DetectionSource != "database" {
		t.Errorf("capabilities = %+v", c)
	}
	if r.Meta.InstanceID == "" || r.Meta.Hostname == "" || r.Meta.StartedAt == "" || r.Meta.Version == "" {
		t.Errorf("meta = %+v; want instance_id, pid, hostname, started_at, version", r.Meta)
	}
	if r.Age < 0 || r.Age > 5*time.Second {
		t.Errorf("last_heartbeat is %s old; want the database's now()", r.Age)
	}
	waitUntil(t, p, 5*time.Second, "the registration log line", func() bool {
		return strings.Contains(p.stderr.String(), fmt.Sprintf(`msg="registered sensor worker" id=%d name=s1`, r.ID))
	})
	stopSensor(t, p, db.Pool, "s1")
}

// 2. Heartbeat mechanism: last_heartbeat advances over two intervals.
func TestHeartbeatMechanism(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	p := start(t, dbEnv(t, db), sensorRun("s1")...)
	first := waitRegistered(t, p, db.Pool, "s1").LastHeartbeat
	seen := []time.Time{first}
	waitUntil(t, p, 10*time.Second, "two more heartbeats", func() bool {
		r := readSensorRow(t, db.Pool, "s1")
		if r.LastHeartbeat.After(seen[len(seen)-1]) {
			seen = append(seen, r.LastHeartbeat)
		}
		return len(seen) >= 3
	})
	if r := readSensorRow(t, db.Pool, "s1"); r.Age > 5*hb {
		t.Errorf("last_heartbeat is %s old with a %s interval", r.Age, hb)
	}
	if gap := seen[2].Sub(seen[1]); gap < hb/2 {
		t.Errorf("heartbeats %s apart; want about %s", gap, hb)
	}
	stopSensor(t, p, db.Pool, "s1")
}

// 3. Graceful shutdown deregistration (SIGINT, as Ctrl-C).
func TestGracefulShutdownDeregistration(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	p := start(t, dbEnv(t, db), sensorRun("s1")...)
	waitRegistered(t, p, db.Pool, "s1")
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT\n%s", code, p.stderr)
	}
	if r := readSensorRow(t, db.Pool, "s1"); r.Status != "inactive" {
		t.Errorf("status %s after SIGINT; want inactive", r.Status)
	}
	if !strings.Contains(p.stderr.String(), `msg="deregistered sensor worker"`) {
		t.Errorf("deregistration not logged:\n%s", p.stderr)
	}
}

// 4. Runtime detection priority: ATTUNE_SENSOR_RUNTIMES, then config; the
// database is not consulted.
func TestRuntimeDetectionPriority(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("sensor:\n  capabilities:\n    runtimes: [Python, node.js]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		want   []string
		source string
	}{
		{"env", []string{"ATTUNE_SENSOR_RUNTIMES=shell"}, nil, []string{"shell"}, "env"},
		{"env-over-config", []string{"ATTUNE_SENSOR_RUNTIMES= Shell, native ,"}, []string{"--config", cfg}, []string{"native", "shell"}, "env"},
		{"flag-over-env", []string{"ATTUNE_SENSOR_RUNTIMES=shell"}, []string{"--runtimes", "python"}, []string{"python"}, "env"},
		{"config", nil, []string{"--config", cfg}, []string{"node.js", "python"}, "config"},
		{"database", nil, nil, nil, "database"},
	} {
		res := run(t, dbEnv(t, db, tc.env...), sensorRun(tc.name, append(tc.args, "--once")...)...)
		if res.Code != 0 {
			t.Fatalf("%s: exit %d\n%s", tc.name, res.Code, res.Stderr)
		}
		r := readSensorRow(t, db.Pool, tc.name)
		if r.Capabilities.DetectionSource != tc.source || (tc.want != nil && !slices.Equal(r.Capabilities.Runtimes, tc.want)) {
			t.Errorf("%s: runtimes %v from %s; want %v from %s", tc.name, r.Capabilities.Runtimes, r.Capabilities.DetectionSource, tc.want, tc.source)
		}
		if r.Status != "inactive" {
			t.Errorf("%s: --once left status %s; want inactive", tc.name, r.Status)
		}
	}
}

// 5. Database-driven detection: a runtime added to the database appears
// after a restart.
func TestDatabaseDrivenDetection(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	e := dbEnv(t, db)
	if res := run(t, e, sensorRun("s1", "--once")...); res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	before := readSensorRow(t, db.Pool, "s1").Capabilities.Runtimes
	if slices.Contains(before, "haskell") || !slices.Contains(before, "shell") {
		t.Fatalf("runtimes before = %v", before)
	}
	execSQL(t, db.Pool, `INSERT INTO runtime (ref, name, runtime_type, distributions)
		VALUES ('test.sensor.haskell', 'Haskell', 'sensor', '{"verification": {"always_available": true}}')`)
	if res := run(t, e, sensorRun("s1", "--once")...); res.Code != 0 {
		t.Fatalf("exit %d after adding a runtime\n%s", res.Code, res.Stderr)
	}
	after := readSensorRow(t, db.Pool, "s1").Capabilities.Runtimes
	if want := append(slices.Clone(before), "haskell"); !slices.Equal(after, slices.Sorted(slices.Values(want))) {
		t.Errorf("runtimes after adding Haskell = %v; want %v plus haskell", after, before)
	}
}

// 6. Runtime verification filtering: a runtime whose binary is missing is
// absent, and appears once the binary exists.
func TestRuntimeVerificationFiltering(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	execSQL(t, db.Pool, `INSERT INTO runtime (ref, name, runtime_type, distributions) VALUES ('test.sensor.fakelang', 'FakeLang', 'sensor',
		'{"verification": {"commands": [{"binary": "attunectl-fakelang", "args": ["--version"], "exit_code": 0, "pattern": "FakeLang \\d+\\.", "priority": 1}]}}')`)
	bin := t.TempDir()
	e := dbEnv(t, db, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	res := run(t, e, sensorRun("s1", "--once")...)
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	if rts := readSensorRow(t, db.Pool, "s1").Capabilities.Runtimes; slices.Contains(rts, "fakelang") {
		t.Fatalf("runtimes %v include fakelang, whose binary does not exist", rts)
	}
	if !strings.Contains(res.Stderr, `msg="runtime not available" ref=test.sensor.fakelang`) {
		t.Errorf("the unavailable runtime is not logged with its reason:\n%s", res.Stderr)
	}

	script := "#!/bin/sh\necho 'FakeLang 1.4.2'\n"
	if err := os.WriteFile(filepath.Join(bin, "attunectl-fakelang"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if res := run(t, e, sensorRun("s1", "--once")...); res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	r := readSensorRow(t, db.Pool, "s1")
	if !slices.Contains(r.Capabilities.Runtimes, "fakelang") || r.Capabilities.RuntimeVersions["fakelang"] != "1.4.2" {
		t.Errorf("after installing the binary: runtimes %v, versions %v; want fakelang 1.4.2", r.Capabilities.Runtimes, r.Capabilities.RuntimeVersions)
	}
}

// 7. Multiple sensor workers are tracked independently.
func TestMultipleSensorWorkers(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	names := []string{"s-a", "s-b", "s-c"}
	procs := map[string]*proc{}
	for _, n := range names {
		procs[n] = start(t, dbEnv(t, db), sensorRun(n, "--runtimes", "shell")...)
	}
	ids, instances := map[int64]bool{}, map[string]bool{}
	for _, n := range names {
		r := waitRegistered(t, procs[n], db.Pool, n)
		ids[r.ID], instances[r.Meta.InstanceID] = true, true
	}
	if len(ids) != 3 || len(instances) != 3 {
		t.Fatalf("3 workers share rows or instances: ids %v, instances %v", ids, instances)
	}
	stopSensor(t, procs["s-b"], db.Pool, "s-b")
	stoppedAt := readSensorRow(t, db.Pool, "s-b").LastHeartbeat
	for _, n := range []string{"s-a", "s-c"} {
		waitUntil(t, procs[n], 10*time.Second, n+" to heartbeat after s-b stopped", func() bool {
			r := readSensorRow(t, db.Pool, n)
			return r.Status == "active" && r.LastHeartbeat.After(stoppedAt)
		})
	}
	if r := readSensorRow(t, db.Pool, "s-b"); r.Status != "inactive" || !r.LastHeartbeat.Equal(stoppedAt) {
		t.Errorf("s-b after stopping: %s, heartbeat %v (was %v)", r.Status, r.LastHeartbeat, stoppedAt)
	}
	stopSensor(t, procs["s-a"], db.Pool, "s-a")
	stopSensor(t, procs["s-c"], db.Pool, "s-c")
}

func TestTakeoverRefusedWhileHolderLive(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	a := start(t, dbEnv(t, db), "sensor", "run", "--name", "dup", "--host", "host-a", "--heartbeat-interval", "1s", "--runtimes", "shell")
	holder := waitRegistered(t, a, db.Pool, "dup")

	res := run(t, dbEnv(t, db), "sensor", "run", "--name", "dup", "--host", "host-b", "--runtimes", "shell")
	if res.Code != 1 {
		t.Fatalf("second worker with the same name: exit %d; want 1\n%s", res.Code, res.Stderr)
	}
	for _, want := range []string{
		`the name is held by a live sensor worker on host host-a (pid ` + strconv.Itoa(a.cmd.Process.Pid) + `)`,
		"last heartbeat ", " ago", "pass --replace to take the name over", "until it is stale (no heartbeat for 3s)",
	} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.Stderr)
		}
	}
	if r := readSensorRow(t, db.Pool, "dup"); r.Meta.InstanceID != holder.Meta.InstanceID || r.Host != "host-a" || r.Status != "active" {
		t.Errorf("the holder's row changed: %+v", r)
	}
	if a.exited() {
		t.Fatalf("the holder exited:\n%s", a.stderr)
	}
	stopSensor(t, a, db.Pool, "dup")
}

// A holder that stopped heartbeating (here: frozen with SIGSTOP, so its
// process still exists) loses the name once its heartbeat is older than its
// grace, and stops when it wakes up and finds the row taken.
func TestTakeoverAllowedOnceStale(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	a := start(t, dbEnv(t, db), sensorRun("dup", "--runtimes", "shell")...)
	waitRegistered(t, a, db.Pool, "dup")
	a.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) })
	grace := 3 * hb
	waitFor(t, 10*time.Second, "the frozen holder to go stale", func() bool {
		return readSensorRow(t, db.Pool, "dup").Age > grace+50*time.Millisecond
	})

	b := start(t, dbEnv(t, db), sensorRun("dup", "--runtimes", "shell")...)
	waitRegistered(t, b, db.Pool, "dup")

	a.signal(t, syscall.SIGCONT)
	if code := a.wait(t, 10*time.Second); code != 1 {
		t.Fatalf("the old holder: exit %d after waking up; want 1\n%s", code, a.stderr)
	}
	if !strings.Contains(a.stderr.String(), "was taken over by another instance") {
		t.Errorf("the old holder does not say why it stopped:\n%s", a.stderr)
	}
	if r := readSensorRow(t, db.Pool, "dup"); r.Status != "active" || r.Meta.PID != b.cmd.Process.Pid {
		t.Errorf("the new holder's row: %+v", r)
	}
	stopSensor(t, b, db.Pool, "dup")
}

// A worker killed without deregistering (crash, OOM, SIGKILL) is replaced at
// once by a new process on the same machine: its pid no longer runs.
func TestTakeoverOfCrashedWorkerOnThisHost(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	a := start(t, dbEnv(t, db), "sensor", "run", "--name", "dup", "--heartbeat-interval", "30s", "--runtimes", "shell")
	waitRegistered(t, a, db.Pool, "dup")
	a.signal(t, syscall.SIGKILL)
	a.wait(t, 5*time.Second)
	if r := readSensorRow(t, db.Pool, "dup"); r.Status != "active" || r.Age > 10*time.Second {
		t.Fatalf("the killed worker's row should still look live: %+v", r)
	}
	res := run(t, dbEnv(t, db), "sensor", "run", "--name", "dup", "--runtimes", "shell", "--once")
	if res.Code != 0 {
		t.Fatalf("restart after a crash: exit %d\n%s", res.Code, res.Stderr)
	}
}

func TestTakeoverWithReplace(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	a := start(t, dbEnv(t, db), sensorRun("dup", "--runtimes", "shell")...)
	first := waitRegistered(t, a, db.Pool, "dup")
	b := start(t, dbEnv(t, db), "sensor", "run", "--name", "dup", "--host", "host-b", "--heartbeat-interval", hb.String(), "--runtimes", "shell", "--replace")
	r := waitRegistered(t, b, db.Pool, "dup")
	if r.ID != first.ID || r.Host != "host-b" {
		t.Errorf("--replace: row %+v; want row %d with host-b", r, first.ID)
	}
	if code := a.wait(t, 10*time.Second); code != 1 {
		t.Fatalf("the replaced worker: exit %d; want 1\n%s", code, a.stderr)
	}
	if !strings.Contains(a.stderr.String(), "was taken over by another instance (on ") {
		t.Errorf("the replaced worker does not say why it stopped:\n%s", a.stderr)
	}
	if r := readSensorRow(t, db.Pool, "dup"); r.Status != "active" || r.Meta.PID != b.cmd.Process.Pid {
		t.Errorf("the replaced worker touched the winner's row: %+v", r)
	}
	stopSensor(t, b, db.Pool, "dup")
}

func TestActionWorkerRowNeverTaken(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	execSQL(t, db.Pool, `INSERT INTO worker (name, worker_type, worker_role, host, status, last_heartbeat)
		VALUES ('exec-1', 'remote', 'action', 'exec-host', 'inactive', now() - interval '1 day')`)
	res := run(t, dbEnv(t, db), "sensor", "run", "--name", "exec-1", "--runtimes", "shell", "--replace", "--once")
	if res.Code != 1 || !strings.Contains(res.Stderr, "belongs to an action worker") || !strings.Contains(res.Stderr, "not even with --replace") {
		t.Fatalf("exit %d; want 1 and a refusal naming the action worker\n%s", res.Code, res.Stderr)
	}
	var role, typ, status, host string
	var meta *string
	if err := db.Pool.QueryRow(context.Background(), `SELECT worker_role::text, worker_type::text, status::text, host, meta::text
		FROM worker WHERE name = 'exec-1'`).Scan(&role, &typ, &status, &host, &meta); err != nil {
		t.Fatal(err)
	}
	if role != "action" || typ != "remote" || status != "inactive" || host != "exec-host" || meta != nil {
		t.Errorf("the action worker's row changed: %s %s %s %s %v", role, typ, status, host, meta)
	}
}

// The database is down when the worker starts (it waits), and restarted
// under the running worker: the process stays up and heartbeats again
// within one interval of the database's return.
func TestSensorSurvivesDatabaseRestart(t *testing.T) {
	t.Parallel()
	srv := dbtest.NewServer(t, embeddedpg.Options{})
	url := srv.ConnString("attune")
	e := env(t, "ATTUNE__DATABASE__URL="+url)
	if res := run(t, e, "migrate", "up"); res.Code != 0 {
		t.Fatalf("migrate up: exit %d\n%s", res.Code, res.Stderr)
	}
	ctx := context.Background()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	const interval = 500 * time.Millisecond
	p := start(t, e, "sensor", "run", "--name", "s1", "--heartbeat-interval", interval.String(), "--runtimes", "shell", "--wait-for-database", "1m")
	waitUntil(t, p, 20*time.Second, "the worker to wait for the database", func() bool {
		return strings.Contains(p.stderr.String(), `msg="database not reachable; retrying" while=connecting`)
	})
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = "attune"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitRegistered(t, p, pool, "s1")

	// Restart under the running worker.
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, p, 20*time.Second, "two failed heartbeats", func() bool {
		return strings.Count(p.stderr.String(), `msg="heartbeat failed; retrying"`) >= 2
	})
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // its connections died with the server
	var back time.Time
	if err := pool.QueryRow(ctx, "SELECT now()").Scan(&back); err != nil {
		t.Fatalf("querying after the restart: %v", err)
	}
	var r sensorRow
	waitUntil(t, p, 10*time.Second, "a heartbeat after the restart", func() bool {
		r, err = querySensorRow(pool, "s1")
		return err == nil && r.LastHeartbeat.After(back)
	})
	if lag := r.LastHeartbeat.Sub(back); lag > interval+250*time.Millisecond {
		t.Errorf("first heartbeat %s after the database was back; want within one interval (%s)", lag, interval)
	} else {
		t.Logf("first heartbeat %s after the database was back (interval %s)", lag, interval)
	}
	if r.Status != "active" {
		t.Errorf("status %s after the restart", r.Status)
	}
	stopSensor(t, p, pool, "s1")
}

func TestSensorWaitForDatabaseGivesUp(t *testing.T) {
	t.Parallel()
	e := env(t, "ATTUNE__DATABASE__URL=postgres://attune:s3cret-pw@127.0.0.1:1/attune?connect_timeout=1")
	begin := time.Now()
	res := run(t, e, "sensor", "run", "--runtimes", "shell", "--wait-for-database", "1s")
	if res.Code != 1 || !strings.Contains(res.Stderr, "gave up after waiting 1s for the database") {
		t.Fatalf("exit %d; want 1 with a clear message\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, `level=WARN msg="database not reachable; retrying"`) {
		t.Errorf("the retries are not logged:\n%s", res.Stderr)
	}
	if strings.Contains(res.Stderr, "s3cret-pw") {
		t.Errorf("the password is printed:\n%s", res.Stderr)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("gave up after %s; want about 1s", d)
	}
}

func TestPrunedRowReRegistered(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	p := start(t, dbEnv(t, db), sensorRun("s1", "--runtimes", "shell")...)
	old := waitRegistered(t, p, db.Pool, "s1")
	execSQL(t, db.Pool, `DELETE FROM worker WHERE name = 's1'`)
	r := waitRegistered(t, p, db.Pool, "s1")
	if r.ID == old.ID || r.Meta.InstanceID != old.Meta.InstanceID {
		t.Errorf("after a prune: id %d (was %d), instance %s (was %s); want a new row of the same instance", r.ID, old.ID, r.Meta.InstanceID, old.Meta.InstanceID)
	}
	if !strings.Contains(p.stderr.String(), "registering again") {
		t.Errorf("re-registration not logged:\n%s", p.stderr)
	}
	stopSensor(t, p, db.Pool, "s1")
}

func TestSIGTERMDeregistersWithinOneSecond(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	p := start(t, dbEnv(t, db), "sensor", "run", "--name", "s1", "--runtimes", "shell") // default 30s interval
	waitRegistered(t, p, db.Pool, "s1")
	begin := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.wait(t, 5*time.Second)
	took := time.Since(begin)
	if code != 0 || took > time.Second {
		t.Errorf("SIGTERM: exit %d after %s; want 0 within 1s\n%s", code, took, p.stderr)
	}
	if r := readSensorRow(t, db.Pool, "s1"); r.Status != "inactive" {
		t.Errorf("status %s after SIGTERM; want inactive", r.Status)
	}
}

// A deregistration that cannot finish (the row is locked) is bounded by
// sensor.shutdown_timeout; a second signal exits at once.
func TestShutdownIsBounded(t *testing.T) {
	t.Parallel()
	for _, second := range []bool{false, true} {
		t.Run(fmt.Sprintf("second-signal=%v", second), func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			p := start(t, dbEnv(t, db, "ATTUNE__SENSOR__SHUTDOWN_TIMEOUT=1"), sensorRun("s1", "--runtimes", "shell")...)
			waitRegistered(t, p, db.Pool, "s1")
			ctx := context.Background()
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `SELECT 1 FROM worker WHERE name = 's1' FOR UPDATE`); err != nil {
				t.Fatal(err)
			}
			p.signal(t, syscall.SIGINT)
			begin := time.Now()
			if second {
				waitUntil(t, p, 5*time.Second, "the worker to start stopping", func() bool {
					return strings.Contains(p.stderr.String(), `msg="stopping sensor worker"`)
				})
				// Signals within 250 ms of the first are the same request
				// (timeout(1) signals the process and its group at once).
				time.Sleep(time.Until(begin.Add(400 * time.Millisecond)))
				p.signal(t, syscall.SIGINT)
				if code := p.wait(t, 2*time.Second); code != 130 {
					t.Errorf("second signal: exit %d; want 130\n%s", code, p.stderr)
				}
				return
			}
			code := p.wait(t, 5*time.Second)
			if took := time.Since(begin); code != 0 || took > 2500*time.Millisecond {
				t.Errorf("exit %d after %s; want 0 within the 1s shutdown timeout\n%s", code, took, p.stderr)
			}
			if !strings.Contains(p.stderr.String(), `level=ERROR msg="deregistering sensor worker failed"`) {
				t.Errorf("the failed deregistration is not logged:\n%s", p.stderr)
			}
		})
	}
}

func TestSensorDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	for _, tc := range []struct {
		args   []string
		want   []string
		source string
	}{
		{[]string{"--runtimes", "shell"}, []string{"shell"}, "env"},
		{nil, nil, "database"},
	} {
		res := run(t, dbEnv(t, db), sensorRun("s1", append(tc.args, "--dry-run")...)...)
		if res.Code != 0 {
			t.Fatalf("--dry-run %v: exit %d\n%s", tc.args, res.Code, res.Stderr)
		}
		var caps struct {
			Runtimes             []string `json:"runtimes"`
			MaxConcurrentSensors int      `json:"max_concurrent_sensors"`
			SensorVersion        string   `json:"sensor_version"`
			DetectionSource      string   `json:"detection_source"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &caps); err != nil {
			t.Fatalf("--dry-run output is not JSON: %v\n%s", err, res.Stdout)
		}
		if caps.DetectionSource != tc.source || (tc.want != nil && !slices.Equal(caps.Runtimes, tc.want)) ||
			!slices.Contains(caps.Runtimes, "shell") || caps.MaxConcurrentSensors != 10 || caps.SensorVersion == "" {
			t.Errorf("--dry-run %v printed %+v", tc.args, caps)
		}
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM worker`).Scan(&n); err != nil || n != 0 {
		t.Errorf("--dry-run wrote %d worker rows (%v)", n, err)
	}
}

func TestHeartbeatIntervalZeroRejected(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--heartbeat-interval", "0"}},
		{[]string{"ATTUNE__SENSOR__HEARTBEAT_INTERVAL=0"}, nil},
		{nil, []string{"--heartbeat-interval", "-5s"}},
	} {
		res := run(t, dbEnv(t, db, tc.env...), append([]string{"sensor", "run", "--name", "s1", "--runtimes", "shell"}, tc.args...)...)
		if res.Code != 2 || !strings.Contains(res.Stderr, "sensor.heartbeat_interval: must be greater than 0") {
			t.Errorf("%v %v: exit %d; want 2 naming sensor.heartbeat_interval\n%s", tc.env, tc.args, res.Code, res.Stderr)
		}
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM worker`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a rejected run wrote %d worker rows (%v)", n, err)
	}
}

// An Attune database that already has the tables (with columns attunectl
// does not know, and unified runtimes without runtime_type) works without
// attunectl's migrations; one that lacks a column the worker writes is
// refused with what is missing.
func TestSensorOnAttuneDatabase(t *testing.T) {
	t.Parallel()
	schema := func(workerExtra string) string {
		return `CREATE SCHEMA attune;
		CREATE TYPE attune.worker_type_enum AS ENUM ('local', 'remote', 'container');
		CREATE TYPE attune.worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');
		CREATE TYPE attune.worker_role_enum AS ENUM ('action', 'sensor', 'hybrid');
		CREATE TABLE attune.runtime (id bigserial PRIMARY KEY, ref text NOT NULL UNIQUE, pack_ref text, name text NOT NULL,
			description text, aliases text[] NOT NULL DEFAULT '{}', distributions jsonb NOT NULL DEFAULT '{}', installation jsonb,
			execution_config jsonb NOT NULL DEFAULT '{}', retired_at timestamptz,
			created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now());
		INSERT INTO attune.runtime (ref, name, distributions, retired_at) VALUES
			('core.shell', 'Shell', '{"verification": {"always_available": true}}', NULL),
			('core.old', 'Old', '{"verification": {"always_available": true}}', now());
		CREATE TABLE attune.worker (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, worker_type attune.worker_type_enum NOT NULL,
			worker_role attune.worker_role_enum NOT NULL DEFAULT 'action', runtime bigint REFERENCES attune.runtime (id), host text,
			port integer, status attune.worker_status_enum, capabilities jsonb, last_heartbeat timestamptz,
			cordoned boolean NOT NULL DEFAULT false, cordon_reason text,
			created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now()` + workerExtra + `)`
	}
	t.Run("with the columns", func(t *testing.T) {
		t.Parallel()
		db := dbtest.NewEmpty(t)
		execSQL(t, db.Pool, schema(", meta jsonb"))
		res := run(t, dbEnv(t, db), sensorRun("s1", "--once")...)
		if res.Code != 0 {
			t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
		}
		if r := readSensorRow(t, db.Pool, "s1"); !slices.Equal(r.Capabilities.Runtimes, []string{"shell"}) || r.Status != "inactive" {
			t.Errorf("row %+v; want runtimes [shell] (the retired runtime left out) and inactive after --once", r)
		}
		var goose *string
		if err := db.Pool.QueryRow(context.Background(), `SELECT to_regclass('attune.goose_db_version')::text`).Scan(&goose); err != nil || goose != nil {
			t.Errorf("sensor run migrated the database (%v, %v)", goose, err)
		}
	})
	t.Run("without meta", func(t *testing.T) {
		t.Parallel()
		db := dbtest.NewEmpty(t)
		execSQL(t, db.Pool, schema(""))
		res := run(t, dbEnv(t, db), sensorRun("s1", "--once")...)
		if res.Code != 1 || !strings.Contains(res.Stderr, "worker.meta column not found (run `attunectl migrate up`") {
			t.Fatalf("exit %d; want 1 naming the missing column\n%s", res.Code, res.Stderr)
		}
	})
}

// Re-verification on an interval: a runtime whose binary appears while the
// worker runs is added to its capabilities, and the change is logged.
func TestReverificationPicksUpNewRuntime(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	execSQL(t, db.Pool, `INSERT INTO runtime (ref, name, runtime_type, distributions) VALUES ('test.sensor.fakelang', 'FakeLang', 'sensor',
		'{"verification": {"commands": [{"binary": "attunectl-fakelang", "args": ["--version"], "pattern": "FakeLang"}]}}')`)
	bin := t.TempDir()
	e := dbEnv(t, db, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "ATTUNE__SENSOR__REVERIFY_INTERVAL=200ms")
	p := start(t, e, sensorRun("s1")...)
	if rts := waitRegistered(t, p, db.Pool, "s1").Capabilities.Runtimes; slices.Contains(rts, "fakelang") {
		t.Fatalf("runtimes %v include fakelang before its binary exists", rts)
	}
	if err := os.WriteFile(filepath.Join(bin, "attunectl-fakelang"), []byte("#!/bin/sh\necho FakeLang 2.0.1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, p, 10*time.Second, "fakelang in the capabilities", func() bool {
		return slices.Contains(readSensorRow(t, db.Pool, "s1").Capabilities.Runtimes, "fakelang")
	})
	waitUntil(t, p, 5*time.Second, "the change to be logged", func() bool {
		return strings.Contains(p.stderr.String(), `msg="runtimes changed; capabilities updated"`) && strings.Contains(p.stderr.String(), "added=[fakelang]")
	})
	stopSensor(t, p, db.Pool, "s1")
}

// --log-format json: every line is a JSON object; the registration carries
// id, name and runtimes; heartbeats are at debug level.
func TestSensorJSONLogs(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	res := run(t, dbEnv(t, db), sensorRun("s1", "--runtimes", "shell", "--once", "--log-format", "json", "--log-level", "debug")...)
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	seen := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(res.Stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		seen[fmt.Sprint(m["msg"])] = m
	}
	reg := seen["registered sensor worker"]
	if reg == nil || reg["id"] == nil || reg["name"] != "s1" || fmt.Sprint(reg["runtimes"]) != "[shell]" || reg["level"] != "INFO" {
		t.Errorf("registration line = %v", reg)
	}
	if hb := seen["heartbeat"]; hb == nil || hb["level"] != "DEBUG" {
		t.Errorf("heartbeat line = %v", hb)
	}
	if seen["deregistered sensor worker"] == nil {
		t.Errorf("no deregistration line in %v", seen)
	}
}

var metricsURL = regexp.MustCompile(`msg="serving metrics" url=(http://\S+)/metrics`)

func TestSensorMetricsEndpoint(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	p := start(t, dbEnv(t, db), sensorRun("s1", "--runtimes", "shell,python", "--metrics-addr", "127.0.0.1:0")...)
	waitRegistered(t, p, db.Pool, "s1")
	m := metricsURL.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("the metrics address is not logged:\n%s", p.stderr)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(m[1] + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	waitUntil(t, p, 5*time.Second, "/readyz to say ready", func() bool { code, _ := get("/readyz"); return code == 200 })
	_, body := get("/metrics")
	for _, want := range []string{"attunectl_sensor_heartbeats_total", "attunectl_sensor_heartbeat_failures_total 0",
		"attunectl_sensor_seconds_since_last_heartbeat", `attunectl_sensor_runtime_available{runtime="python"} 1`,
		`attunectl_sensor_runtime_available{runtime="shell"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	stopSensor(t, p, db.Pool, "s1")
}

// The README's quick start: `sensor run` with nothing configured uses the
// embedded database, registers, and deregisters on Ctrl-C.
func TestSensorRunOnEmbeddedDefault(t *testing.T) {
	t.Parallel()
	e := embeddedEnv(t)

	p := start(t, e, "sensor", "run", "--heartbeat-interval", "300ms")
	waitUntil(t, p, 60*time.Second, "registration on the embedded database", func() bool {
		return strings.Contains(p.stderr.String(), `msg="registered sensor worker"`)
	})
	if !strings.Contains(p.stderr.String(), "started the embedded PostgreSQL and created its schema (attunectl embedded stop stops it)\" data_dir=") {
		t.Errorf("does not say it uses the embedded database:\n%s", p.stderr)
	}
	host, _ := os.Hostname()
	if !strings.Contains(p.stderr.String(), "name=sensor-"+host) {
		t.Errorf("default name is not sensor-%s:\n%s", host, p.stderr)
	}
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 0 || !strings.Contains(p.stderr.String(), `msg="deregistered sensor worker"`) {
		t.Fatalf("Ctrl-C: exit %d\n%s", code, p.stderr)
	}
}

// BenchmarkSensorStartup measures `sensor run` from process start to its
// row being registered, detection excluded (--runtimes shell): exec, config,
// connect, schema check, register. The row is polled every millisecond.
func BenchmarkSensorStartup(b *testing.B) {
	db := dbtest.New(b)
	e := dbEnv(b, db)
	binary(b)
	i := 0
	for b.Loop() {
		i++
		name := fmt.Sprintf("bench-%d", i)
		p := start(b, e, "sensor", "run", "--name", name, "--runtimes", "shell")
		for {
			var n int
			_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM worker WHERE name = $1 AND meta->>'pid' = $2`,
				name, strconv.Itoa(p.cmd.Process.Pid)).Scan(&n)
			if n == 1 {
				break
			}
			if p.exited() {
				b.Fatalf("attunectl exited:\n%s", p.stderr)
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		p.signal(b, syscall.SIGTERM)
		p.wait(b, 10*time.Second)
		b.StartTimer()
	}
}

// BenchmarkSensorIdleRSS reports the resident memory of `sensor run`
// (database detection, default intervals, metrics on) after 60 s idle. It
// runs once, whatever -benchtime says:
//
//	go test ./cmd/attunectl -run '^$' -bench SensorIdleRSS -benchtime 1x
func BenchmarkSensorIdleRSS(b *testing.B) {
	db := dbtest.New(b)
	p := start(b, dbEnv(b, db), "sensor", "run", "--name", "idle", "--metrics-addr", "127.0.0.1:0")
	waitRegistered(b, p, db.Pool, "idle")
	time.Sleep(60 * time.Second)
	rss, err := residentKiB(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(rss)/1024, "MiB-RSS")
	stopSensor(b, p, db.Pool, "idle")
}

// residentKiB reads VmRSS from /proc/<pid>/status.
func residentKiB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
