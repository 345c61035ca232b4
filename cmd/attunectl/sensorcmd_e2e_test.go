package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// sensorManifest is the absolute path of a file of pkg/sensors/testdata.
func sensorManifest(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "pkg", "sensors", "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sensorCounts is what a refused sensor command must leave unchanged.
func sensorCounts(t *testing.T, db *dbtest.DB) string {
	t.Helper()
	return queryString(t, db, `SELECT (SELECT count(*) FROM sensor) || '/' || (SELECT count(*) FROM trigger) || '/' ||
		(SELECT count(*) FROM sensor_workload_assignment) || '/' || coalesce((SELECT string_agg(ref, ',' ORDER BY ref) FROM sensor WHERE enabled), '')`)
}

// TestSensorCommandsBinary: sensor add, list, enable and disable as an
// operator runs them, with the exit statuses of bad input.
func TestSensorCommandsBinary(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	environ := dbEnv(t, db)

	expect(t, environ, 0, []string{"sensor", "add", "-f", sensorManifest(t, "good/sensors.yaml")},
		`(?m)^sensor acme\.disk_watch created$`, `(?m)^sensor acme\.heartbeat created$`, `(?m)^trigger acme\.disk_ok created$`)
	before := sensorCounts(t, db)
	expect(t, environ, 2, []string{"sensor", "add", "-f", sensorManifest(t, "good/sensors.yaml")}, `pass --update to replace it\); nothing was written`)
	for _, f := range []string{"bad/07_unknown_runtime.yaml", "bad/17_toleration_operator.yaml", "bad/30_bad.json"} {
		r := expect(t, environ, 2, []string{"sensor", "add", "-f", sensorManifest(t, f)}, `sensors\[\d\]\.`, `nothing was written`)
		noRawSQL(t, f, r)
	}
	r := runIn(t, t.TempDir(), environ, "ref: acme.Bad\nruntime: core.sensor.shell\nentrypoint: x.sh\n", "sensor", "add", "-f", "-")
	if r.Code != 2 || !strings.Contains(r.Stderr, "stdin: invalid sensor manifest") {
		t.Errorf("a bad manifest on stdin: exit %d\n%s", r.Code, r.Stderr)
	}
	if after := sensorCounts(t, db); after != before {
		t.Fatalf("refused manifests changed the tables from %s to %s", before, after)
	}

	expect(t, environ, 0, []string{"sensor", "list"},
		`(?m)^REF +RUNTIME +STATE +WORKER +LEASE +RESTARTS +LAST EVENT +REASON$`,
		`(?m)^acme\.disk_watch +core\.sensor\.python +unschedulable +- +- +0 +never +no live sensor worker$`,
		`(?m)^acme\.heartbeat +core\.sensor\.shell +disabled +- +- +0 +never$`)
	r = expect(t, environ, 0, []string{"sensor", "list", "acme.heartbeat", "-o", "json"})
	var listed []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &listed); err != nil || len(listed) != 1 || listed[0]["state"] != "disabled" || listed[0]["worker"] != nil {
		t.Errorf("sensor list -o json: %v\n%s", err, r.Stdout)
	}
	expect(t, environ, 2, []string{"sensor", "list", "acme.nope"}, "sensor acme.nope not found")
	expect(t, environ, 2, []string{"sensor", "list", "--state", "sleeping"}, `--state "sleeping": use one of disabled, idle, unschedulable`)
	expect(t, environ, 2, []string{"sensor", "list", "-o", "csv"}, `unknown output format "csv": use one of table, wide, json, yaml, name`)

	expect(t, environ, 2, []string{"sensor", "enable", "acme.heartbeat", "acme.nope"}, `sensor not found: acme\.nope .*nothing was changed`)
	if after := sensorCounts(t, db); after != before {
		t.Fatalf("a refused enable changed the tables from %s to %s", before, after)
	}
	expect(t, environ, 0, []string{"sensor", "enable", "acme.heartbeat"}, `(?m)^sensor acme\.heartbeat enabled$`)
	expect(t, environ, 0, []string{"sensor", "disable", "acme.disk_watch", "-o", "name"}, `(?m)\Aacme\.disk_watch\n\z`)
	expect(t, environ, 0, []string{"sensor", "list", "--state", "disabled", "-o", "name"}, `(?m)\Aacme\.disk_watch\n\z`)
}

// TestCordonDrainBinary: cordon and uncordon a worker, drain --wait one
// that holds nothing, and interrupt the --wait of one that holds a sensor.
func TestCordonDrainBinary(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	environ := dbEnv(t, db)
	r := runIn(t, t.TempDir(), environ, "{ref: acme.held, runtime: core.sensor.shell, entrypoint: h.sh}", "sensor", "add", "-f", "-")
	if r.Code != 0 {
		t.Fatalf("sensor add: %s", r.Stderr)
	}
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat)
		 VALUES ('w-busy', 'sensor', 'local', 'active', 'busy', '{"runtimes": ["shell"]}', '{}', now()),
		        ('w-idle', 'sensor', 'local', 'active', 'idle', '{"runtimes": ["shell"]}', '{}', now())`,
		`UPDATE sensor_workload_assignment SET worker = (SELECT id FROM worker WHERE name = 'w-busy'),
		   worker_instance = gen_random_uuid(), generation = 1, lease_expires_at = clock_timestamp() + interval '10 minutes',
		   assigned_at = now(), renewed_at = now()`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	expect(t, environ, 0, []string{"worker", "cordon", "w-idle", "--reason", "kernel upgrade"}, `(?m)^worker w-idle cordoned \(kernel upgrade\)`)
	expect(t, environ, 0, []string{"worker", "list"},
		`(?m)^NAME +ROLE +STATUS +HOST +RUNTIMES +SENSORS +LAST HEARTBEAT$`,
		`(?m)^w-busy +sensor +active +busy +shell +1 `,
		`(?m)^w-idle +sensor +active,cordoned +idle +shell +0 `)
	expect(t, environ, 0, []string{"worker", "list", "-o", "wide"}, `(?m)^w-idle .* yes \(kernel upgrade, by \S+, (just now|\d+s ago)\) `)
	r = expect(t, environ, 0, []string{"worker", "list", "w-idle", "-o", "json"})
	var ws []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &ws); err != nil || len(ws) != 1 || ws[0]["cordoned"] != true || ws[0]["sensors"] != float64(0) {
		t.Errorf("worker list -o json: %v\n%s", err, r.Stdout)
	}
	expect(t, environ, 0, []string{"worker", "uncordon", "w-idle"}, `(?m)^worker w-idle uncordoned`)
	expect(t, environ, 2, []string{"worker", "cordon", "w-nope"}, `no such worker`)

	expect(t, environ, 0, []string{"worker", "drain", "w-idle", "--wait", "--deadline", "30"},
		`(?m)^worker w-idle cordoned and draining: it hands over up to 2 sensors per interval; what it holds after 30s is released$`,
		`(?m)^worker w-idle drained in \S+: 0 handed over, 0 released at the deadline; it stays cordoned`)

	p := start(t, environ, "worker", "drain", "w-busy", "--wait", "--deadline", "1h")
	waitFor(t, 20*time.Second, "the drain to be recorded", func() bool {
		return strings.Contains(p.stdout.String(), "cordoned and draining")
	})
	time.Sleep(300 * time.Millisecond)
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 130 {
		t.Errorf("drain --wait interrupted: exit %d, want 130\n%s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "interrupted: the drain of worker w-busy stays in place (it holds 1 sensor") {
		t.Errorf("stderr:\n%s", p.stderr)
	}
	if got := queryString(t, db, `SELECT (finished_at IS NULL)::text FROM worker_drain d JOIN worker w ON w.id = d.worker WHERE w.name = 'w-busy'`); got != "true" {
		t.Errorf("the interrupted drain is no longer in place")
	}
}

// TestEventListBinary: event list in table and json, and --follow -o json
// printing an event as it commits until SIGINT (exit 0).
func TestEventListBinary(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	environ := dbEnv(t, db)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO event (trigger_ref, payload, source_ref, created)
		VALUES ('acme.tick', '{"n": 1}', 'acme.ticker', now() - interval '90 seconds')`); err != nil {
		t.Fatal(err)
	}
	expect(t, environ, 0, []string{"event", "list"},
		`(?m)^ID +CREATED +TRIGGER +SENSOR +PAYLOAD$`, `(?m)^1 +1m3\ds ago +acme\.tick +acme\.ticker +\{"n":1\}$`)
	r := expect(t, environ, 0, []string{"event", "list", "--sensor", "acme.ticker", "-o", "json"})
	var evs []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &evs); err != nil || len(evs) != 1 {
		t.Fatalf("event list -o json: %v\n%s", err, r.Stdout)
	}
	for _, k := range []string{"id", "trigger_ref", "source_ref", "payload", "created"} {
		if _, ok := evs[0][k]; !ok {
			t.Errorf("event list -o json has no %q: %s", k, r.Stdout)
		}
	}
	if r := expect(t, environ, 0, []string{"event", "list", "--since", "30"}, `No events found\.`); r.Stdout != "" {
		t.Errorf("event list --since 30 printed %q", r.Stdout)
	}

	p := start(t, environ, "event", "list", "--follow", "-o", "json")
	waitFor(t, 20*time.Second, "the existing event", func() bool { return strings.Count(p.stdout.String(), "\n") >= 1 })
	if _, err := db.Pool.Exec(ctx, `INSERT INTO event (trigger_ref, payload, source_ref) VALUES ('acme.tick', '{"n": 2}', 'acme.ticker')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the new event", func() bool { return strings.Count(p.stdout.String(), "\n") >= 2 })
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("event list --follow after SIGINT: exit %d\n%s", code, p.stderr)
	}
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	var last map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &last) != nil || last["payload"].(map[string]any)["n"] != float64(2) {
		t.Errorf("followed lines:\n%s", p.stdout)
	}
}

// TestSensorCommandsThroughPgBouncer: the sensor, cordon, drain and event
// commands through a transaction pooler, where LISTEN does not work:
// --follow falls back to polling and still prints a new event.
func TestSensorCommandsThroughPgBouncer(t *testing.T) {
	t.Parallel()
	db := dbtest.NewPgBouncer(t)
	e := poolerEnv(t, db)
	if r := runIn(t, t.TempDir(), e, "{ref: acme.pooled, runtime: core.sensor.shell, entrypoint: p.sh, triggers: [acme.pooled_fired]}", "sensor", "add", "-f", "-"); r.Code != 0 {
		t.Fatalf("sensor add through the pooler: exit %d\n%s", r.Code, r.Stderr)
	}
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat)
		VALUES ('w-pooled', 'sensor', 'local', 'active', 'pooled', '{"runtimes": ["shell"]}', '{}', now())`); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		args []string
		want string
	}{
		{[]string{"sensor", "list"}, "acme.pooled"},
		{[]string{"sensor", "disable", "acme.pooled"}, "disabled"},
		{[]string{"sensor", "enable", "acme.pooled"}, "enabled"},
		{[]string{"worker", "cordon", "w-pooled"}, "cordoned"},
		{[]string{"worker", "list"}, "active,cordoned"},
		{[]string{"worker", "uncordon", "w-pooled"}, "uncordoned"},
		{[]string{"worker", "drain", "w-pooled", "--wait"}, "drained in"},
		{[]string{"event", "list", "-o", "json"}, "[]"},
	} {
		r := run(t, e, s.args...)
		if r.Code != 0 || !strings.Contains(r.Stdout, s.want) {
			t.Errorf("attunectl %s through PgBouncer: exit %d, want %q\n%s%s", strings.Join(s.args, " "), r.Code, s.want, r.Stdout, r.Stderr)
		}
	}
	p := start(t, e, "event", "list", "--follow", "-o", "json")
	time.Sleep(500 * time.Millisecond)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO event (trigger_ref, payload, source_ref) VALUES ('acme.pooled_fired', '{"n": 1}', 'acme.pooled')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the followed event through the pooler", func() bool { return strings.Contains(p.stdout.String(), `"acme.pooled_fired"`) })
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("event list --follow through PgBouncer after SIGINT: exit %d\n%s", code, p.stderr)
	}
}
