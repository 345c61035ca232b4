package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/sensors"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

const (
	sensorManifestsDir = "../sensors/testdata"
	sensorGoldenDir    = "../../testdata/golden/sensor"
)

func sensorGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testsupport.Golden(t, filepath.Join(sensorGoldenDir, name), got, *update, "go test ./pkg/cli -run 'TestSensor.*Golden' -update")
}

// sensorRows is what a refused command must leave unchanged: the counts of
// sensors, triggers, workloads and assignments, and which are enabled.
func sensorRows(t *testing.T, db *dbtest.DB) string {
	t.Helper()
	var s string
	err := db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM sensor) || '/' || (SELECT count(*) FROM trigger) || '/' ||
		(SELECT count(*) FROM sensor_workload) || '/' || (SELECT count(*) FROM sensor_workload_assignment) || '/' ||
		coalesce((SELECT string_agg(ref, ',' ORDER BY ref) FROM sensor WHERE enabled), '')`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sensorFleet is the fixture of the sensor goldens: the good manifests
// (python with a selector that nobody meets, a disabled shell sensor, a
// node sensor), a shell sensor owned by a worker whose name holds control
// characters, and a quarantined one. Every time is computed from the
// transaction's now(), which it returns, so that rebaseSensors can move the
// listing onto the golden clock.
func sensorFleet(t *testing.T) (*dbtest.DB, time.Time) {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	r := rtExec(t, rtEnv(db, "/nonexistent"), "", "sensor", "add",
		"-f", filepath.Join(sensorManifestsDir, "good", "sensors.yaml"))
	if r.Code != 0 {
		t.Fatalf("sensor add: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, rtEnv(db, "/nonexistent"), `[{ref: acme.owned, runtime: core.sensor.shell, entrypoint: o.sh},
{ref: acme.crashy, runtime: core.sensor.shell, entrypoint: c.sh}]`, "sensor", "add", "-f", "-")
	if r.Code != 0 {
		t.Fatalf("sensor add -f -: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	var at time.Time
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat)
			 VALUES (E'evil\x1b]0;owned\x07-01', 'sensor', 'local', 'active', 'evil', '{"runtimes": ["shell"]}', '{}', now())`,
			`UPDATE sensor_workload_assignment a SET worker = (SELECT id FROM worker WHERE host = 'evil'),
			   worker_instance = '6f1c2a9e-0000-4000-8000-000000000001', generation = 3,
			   lease_expires_at = now() + interval '100 seconds', assigned_at = now() - interval '5 minutes', renewed_at = now()
			 FROM sensor_workload w JOIN sensor s ON s.id = w.sensor WHERE a.workload = w.id AND s.ref = 'acme.owned'`,
			`INSERT INTO sensor_workload_state (workload, state, generation, restarts)
			 SELECT w.id, 'running', 3, 2 FROM sensor_workload w JOIN sensor s ON s.id = w.sensor WHERE s.ref = 'acme.owned'`,
			`INSERT INTO sensor_workload_state (workload, state, restarts, consecutive_failures, quarantined_at, last_reason)
			 SELECT w.id, 'quarantined', 5, 5, now(), 'exited with status 1 five times: boom' FROM sensor_workload w
			 JOIN sensor s ON s.id = w.sensor WHERE s.ref = 'acme.crashy'`,
			`INSERT INTO event (trigger_ref, payload, source, source_ref, created)
			 SELECT 'acme.owned_fired', '{}', id, ref, now() - interval '42 seconds' FROM sensor WHERE ref = 'acme.owned'`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, "SELECT now()").Scan(&at)
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, at
}

// rebaseSensors moves a listing onto the golden clock (see rebase).
func rebaseSensors(l sensors.Listing, inserted time.Time) sensors.Listing {
	shift := goldenNow.Sub(inserted)
	out := l
	out.At = goldenNow
	out.Sensors = slices.Clone(l.Sensors)
	for i := range out.Sensors {
		s := &out.Sensors[i]
		for _, p := range []**time.Time{&s.LeaseExpires, &s.AssignedAt, &s.LastEvent} {
			if *p != nil {
				t := (*p).Add(shift).UTC()
				*p = &t
			}
		}
		if s.LeaseExpires != nil {
			s.LeaseLeft = s.LeaseExpires.Sub(goldenNow)
		}
	}
	return out
}

// TestSensorListGolden prints the real listing of the fixture in every
// format, with colour off and on, on the golden clock.
func TestSensorListGolden(t *testing.T) {
	t.Parallel()
	db, inserted := sensorFleet(t)
	l, err := sensors.List(context.Background(), db.Handle(t), sensors.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l = rebaseSensors(l, inserted)
	for _, f := range []output.Format{output.Table, output.Wide, output.JSON, output.YAML, output.Name} {
		for _, color := range []bool{false, true} {
			if color && f != output.Table {
				continue
			}
			name := "list-" + string(f)
			if color {
				name += "-color"
			}
			t.Run(name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := printSensors(&buf, l, f, output.Palette{On: color}); err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(buf.Bytes(), []byte("\x1b]")) || bytes.Contains(buf.Bytes(), []byte("\a")) {
					t.Errorf("a control character of the database reached the output:\n%q", buf.String())
				}
				sensorGolden(t, name+".golden", buf.Bytes())
			})
		}
	}
}

// The run function against the fixture: filters, JSON fields, unknown refs
// and states, and the empty listing.
func TestSensorListRun(t *testing.T) {
	t.Parallel()
	db, _ := sensorFleet(t)
	ctx := context.Background()
	run := func(o sensorListOptions) (string, string, error) {
		app, out, errOut := testApp("")
		err := runSensorList(ctx, app, dbOf(db), o)
		return out.String(), errOut.String(), err
	}
	out, _, err := run(sensorListOptions{Format: output.Name, State: sensors.StateUnschedulable})
	if err != nil || out != "acme.disk_watch\n" {
		t.Errorf("--state unschedulable: %v %q", err, out)
	}
	out, _, err = run(sensorListOptions{Format: output.Name, Worker: "evil\x1b]0;owned\a-01"})
	if err != nil || out != "acme.owned\n" {
		t.Errorf("--worker: %v %q", err, out)
	}
	out, _, err = run(sensorListOptions{Format: output.JSON, Refs: []string{"acme.owned", "acme.heartbeat"}})
	var got []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got) != 2 {
		t.Fatalf("json: %v\n%s", err, out)
	}
	for _, k := range []string{"ref", "runtime", "enabled", "state", "worker", "generation", "lease_expires_at", "reason"} {
		if _, ok := got[0][k]; !ok {
			t.Errorf("json has no %q: %v", k, got[0])
		}
	}
	if got[0]["worker"] != nil || got[1]["worker"] != "evil\x1b]0;owned\a-01" || got[1]["state"] != "running" {
		t.Errorf("json: worker %v / %v, state %v", got[0]["worker"], got[1]["worker"], got[1]["state"])
	}
	_, _, err = run(sensorListOptions{Format: output.Table, Refs: []string{"acme.owned", "acme.nope", "acme.gone"}})
	if ExitCode(err) != ExitUsage || err.Error() != "sensors acme.nope, acme.gone not found (see `attunectl sensor list`)" {
		t.Errorf("unknown refs: exit %d, %v", ExitCode(err), err)
	}
	out, errOut, err := run(sensorListOptions{Format: output.Table, Worker: "nobody"})
	if err != nil || out != "" || errOut != "No sensors found.\n" {
		t.Errorf("empty: %v %q %q", err, out, errOut)
	}
	o := sensorListOptions{State: "runing"}
	if err := o.Validate(); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), `--state "runing": use one of disabled, idle, unschedulable, unassigned, assigned, starting, running, backoff, quarantined`) {
		t.Errorf("bad state: %v", err)
	}
}

// sensor add through the command line: created, updated, triggers; the
// all-or-nothing refusals of bad manifests; -o rejection.
func TestSensorAddCommand(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := rtEnv(db, "/nonexistent")
	good := filepath.Join(sensorManifestsDir, "good", "sensors.yaml")
	r := rtExec(t, env, "", "sensor", "add", "-f", good)
	want := "sensor acme.disk_watch created\nsensor acme.heartbeat created\ntrigger acme.disk_full created\ntrigger acme.disk_ok created\n"
	if r.Code != 0 || r.Stdout != want {
		t.Fatalf("sensor add: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	before := sensorRows(t, db)
	r = rtExec(t, env, "", "sensor", "add", "-f", good)
	if r.Code != 2 || !strings.Contains(r.Stderr, `adding sensor "acme.disk_watch" (sensors[0]): sensor exists (pass --update to replace it); nothing was written`) {
		t.Errorf("adding again: exit %d\n%s", r.Code, r.Stderr)
	}
	r = rtExec(t, env, "", "sensor", "add", "-f", good, "--update", "-o", "json")
	var rep sensorAddReport
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &rep) != nil || len(rep.Updated) != 2 || len(rep.Created) != 0 || len(rep.TriggersCreated) != 0 {
		t.Errorf("--update -o json: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if after := sensorRows(t, db); after != before {
		t.Errorf("--update changed the rows from %s to %s", before, after)
	}
	for _, c := range []struct{ file, want string }{
		{"bad/07_unknown_runtime.yaml", "sensors[0].runtime: unknown runtime"},
		{"bad/09_bad_semver.yaml", "sensors[0].runtime_version"},
		{"bad/25_one_bad_of_two.yaml", "sensors[1]"},
		{"bad/01_unknown_key.yaml", "unknown key"},
	} {
		r := rtExec(t, env, "", "sensor", "add", "-f", filepath.Join(sensorManifestsDir, c.file))
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) || !strings.Contains(r.Stderr, "nothing was written") {
			t.Errorf("%s: exit %d, want 2 and %q\n%s", c.file, r.Code, c.want, r.Stderr)
		}
		if after := sensorRows(t, db); after != before {
			t.Errorf("%s: rows changed from %s to %s", c.file, before, after)
		}
	}
	for _, args := range [][]string{
		{"sensor", "add", "-f", good, "-o", "wide"},
		{"sensor", "list", "-o", "jsonl"},
		{"sensor", "enable", "acme.heartbeat", "-o", "wide"},
		{"sensor", "add"},
		{"sensor", "add", "-f", "/nonexistent/sensors.yaml"},
		{"sensor", "list", "--state", "ok"},
	} {
		if r := rtExec(t, env, "", args...); r.Code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.Code, r.Stderr)
		}
	}
	if after := sensorRows(t, db); after != before {
		t.Errorf("refused commands changed the rows from %s to %s", before, after)
	}
}

// A manifest with several mistakes gets every one of them in one answer:
// its fields' problems and the runtime the database lacks together; a
// file that says it is JSON is held to JSON (a trailing comma).
func TestSensorAddReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := rtEnv(db, "/nonexistent")
	manifest := `- ref: acme.Broken
  runtime: core.sensor.cobol
  runtime_version: "three"
  entrypoint: broken.py
  placement: {selector: [zone]}
- ref: acme.fine
  runtime: core.sensor.fortran
  entrypoint: fine.py
`
	r := rtExec(t, env, manifest, "sensor", "add", "-f", "-")
	for _, want := range []string{
		"invalid sensor manifest: 5 problems",
		`sensors[0].ref: "acme.Broken" is not a sensor ref`,
		"sensors[0].runtime_version",
		"sensors[0].placement.selector",
		`sensors[0].runtime: unknown runtime "core.sensor.cobol"`,
		`sensors[1].runtime: unknown runtime "core.sensor.fortran"`,
	} {
		if r.Code != 2 || !strings.Contains(r.Stderr, want) {
			t.Errorf("exit %d, want 2 and %q:\n%s", r.Code, want, r.Stderr)
		}
	}
	dir := t.TempDir()
	trailing := filepath.Join(dir, "sensors.json")
	if err := os.WriteFile(trailing, []byte(`[{"ref": "acme.x", "runtime": "core.sensor.shell", "entrypoint": "x.sh",}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = rtExec(t, env, "", "sensor", "add", "-f", trailing)
	if r.Code != 2 || !strings.Contains(r.Stderr, "not valid JSON: line 1, column 73") {
		t.Errorf("a .json with a trailing comma: exit %d\n%s", r.Code, r.Stderr)
	}
	var n int
	if err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sensor`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d sensors written by refused manifests (%v)", n, err)
	}
}

// sensor add --example writes the example program where the sensor's user
// can read it and nobody else can change it, and adds the sensor with that
// entrypoint; it refuses to write through a symlink.
func TestSensorAddExample(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	dir := filepath.Join(t.TempDir(), "example")
	r := rtExec(t, rtEnv(db, "/nonexistent"), "", "sensor", "add", "--example", "--example-dir", dir)
	prog := filepath.Join(dir, "hello.py")
	if r.Code != 0 || !strings.Contains(r.Stdout, "example program written to "+prog) || !strings.Contains(r.Stdout, "sensor example.hello created") {
		t.Fatalf("sensor add --example: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	fi, err := os.Stat(prog)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: %v, mode %v, want 0644", prog, err, fi.Mode())
	}
	b, _ := os.ReadFile(prog)
	if !strings.Contains(string(b), "ATTUNE_SENSOR_TRIGGERS") || !strings.HasPrefix(string(b), "#!/usr/bin/env python3") {
		t.Errorf("%s is not the example program", prog)
	}
	var entrypoint, runtime string
	if err := db.Pool.QueryRow(t.Context(), `SELECT entrypoint, runtime_ref FROM sensor WHERE ref = 'example.hello'`).Scan(&entrypoint, &runtime); err != nil || entrypoint != prog || runtime != "core.sensor.python" {
		t.Errorf("the sensor row: %q %q %v", entrypoint, runtime, err)
	}
	// A symlink where the program goes is not followed.
	other := filepath.Join(t.TempDir(), "example")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(other, "hello.py")); err != nil {
		t.Fatal(err)
	}
	r = rtExec(t, rtEnv(db, "/nonexistent"), "", "sensor", "add", "--example", "--example-dir", other, "--update")
	if r.Code == 0 || !strings.Contains(r.Stderr, "is not a regular file") {
		t.Errorf("through a symlink: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := rtExec(t, rtEnv(db, "/nonexistent"), "", "sensor", "add", "--example", "-f", "x.yaml"); r.Code != 2 || !strings.Contains(r.Stderr, "--example and --filename cannot be combined") {
		t.Errorf("--example with -f: exit %d\n%s", r.Code, r.Stderr)
	}
}

// enable and disable: all or none, unknown refs named (exit 2), enable
// clears a quarantine and says so.
func TestSensorEnableDisable(t *testing.T) {
	t.Parallel()
	db, _ := sensorFleet(t)
	env := rtEnv(db, "/nonexistent")
	before := sensorRows(t, db)
	r := rtExec(t, env, "", "sensor", "disable", "acme.owned", "acme.nope")
	if r.Code != 2 || !strings.Contains(r.Stderr, "sensor not found: acme.nope (see `attunectl sensor list`); nothing was changed") {
		t.Errorf("unknown ref: exit %d\n%s", r.Code, r.Stderr)
	}
	if after := sensorRows(t, db); after != before {
		t.Errorf("rows changed from %s to %s", before, after)
	}
	r = rtExec(t, env, "", "sensor", "disable", "acme.owned", "acme.disk_watch")
	if r.Code != 0 || r.Stdout != "sensor acme.disk_watch disabled\nsensor acme.owned disabled\n" {
		t.Errorf("disable: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "sensor", "enable", "acme.crashy", "acme.heartbeat")
	if r.Code != 0 || r.Stdout != "sensor acme.crashy enabled\nsensor acme.heartbeat enabled\ncleared the quarantine and failure count of one sensor: it starts again at once\n" {
		t.Errorf("enable: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "sensor", "list", "acme.crashy", "acme.heartbeat", "acme.owned", "-o", "json")
	var got []sensors.Listed
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || r.Code != 0 {
		t.Fatalf("list: %v\n%s", err, r.Stderr)
	}
	states := []string{got[0].State, got[1].State, got[2].State}
	if !slices.Equal(states, []string{"unassigned", "unassigned", "disabled"}) {
		t.Errorf("states after enable/disable: %v", states)
	}
	r = rtExec(t, env, "", "sensor", "enable", "acme.crashy", "-o", "json")
	if r.Code != 0 || strings.Join(strings.Fields(r.Stdout), " ") != `{ "enabled": [ "acme.crashy" ], "quarantine_cleared": 0 }` {
		t.Errorf("enable -o json: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
