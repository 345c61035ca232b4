package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// The hostile sensors of testdata/sensors/hostile, each run by the real
// binary against a real database: every attack must fail.

// hostileProgram copies a hostile sensor program into a directory every
// user can read.
func hostileProgram(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(readableDir(t, "ahostile-"), name)
	copyFile(t, filepath.Join("..", "..", "testdata", "sensors", "hostile", name), p, 0o755)
	return p
}

// nobodyEnv runs sensors as nobody, with a PATH nobody can use.
func nobodyEnv(t *testing.T, db *dbtest.DB, extra ...string) []string {
	t.Helper()
	e := dbEnv(t, db, append([]string{"ATTUNE__SENSOR__RUN_AS=nobody", "ATTUNE__SENSOR__STOP_TIMEOUT=2"}, extra...)...)
	for i, kv := range e {
		if strings.HasPrefix(kv, "PATH=") {
			e[i] = "PATH=/usr/local/bin:/usr/bin:/bin"
		}
	}
	return e
}

// hostileEvent is the payload of the newest event of a sensor.
func hostileEvent(t *testing.T, db *dbtest.DB, ref string, into any) bool {
	t.Helper()
	var payload []byte
	err := db.Pool.QueryRow(context.Background(), `SELECT payload FROM event WHERE source_ref = $1 ORDER BY id DESC LIMIT 1`, ref).Scan(&payload)
	if err != nil {
		return false
	}
	return json.Unmarshal(payload, into) == nil
}

// TestHostileSensorCannotEscapeItsBox: a sensor running as nobody leaves a
// setsid daemon, kills and freezes its sandbox helper, and ignores
// SIGTERM. The helper is out of its reach (PID 1 of the sensor's box, and
// root), so `sensor disable` still ends the sensor and its daemon.
func TestHostileSensorCannotEscapeItsBox(t *testing.T) {
	t.Parallel()
	testsupport.RequireRoot(t, "the sensor runs as nobody, another user than the worker")
	db := dbtest.New(t)
	prog := hostileProgram(t, "escape.sh")
	defineSensor(t, db.Pool, fmt.Sprintf(`
ref: demo.escape
label: Escapes its box
runtime: core.sensor.shell
entrypoint: %s
triggers: [{ref: demo.hostile}]
`, prog))
	e := nobodyEnv(t, db)
	w := start(t, e, "sensor", "run", "--name", "esc-1", "--heartbeat-interval", superviseHB.String(), "--runtimes", "shell")
	waitUntil(t, w, 30*time.Second, "the sensor to attack its helper", func() bool {
		return strings.Contains(w.stderr.String(), "attacked the helper")
	})
	if len(testsupport.ProcessesWith(prog+"-daemon")) == 0 {
		t.Fatal("the sensor's daemon is not running: the attack did not happen")
	}
	if res := run(t, e, "sensor", "disable", "demo.escape"); res.Code != 0 {
		t.Fatalf("sensor disable: exit %d\n%s", res.Code, res.Stderr)
	}
	if left := testsupport.WaitGone(prog, 15*time.Second); len(left) > 0 {
		t.Fatalf("processes of the disabled sensor outlived it: %v\n%s", left, w.stderr)
	}
	stopSensor(t, w, db.Pool, "esc-1")
}

// TestWedgedSensorStopBlocksNothing: a sensor that ignores SIGTERM and
// tries to freeze whatever would kill it is disabled; while its stop runs,
// the worker goes on renewing the lease of its other sensor (never lapsed,
// never taken), the hostile one ends within the stop timeout and a kill,
// and the worker still shuts down in time.
func TestWedgedSensorStopBlocksNothing(t *testing.T) {
	t.Parallel()
	testsupport.RequireRoot(t, "the sensors run as nobody, another user than the worker")
	db := dbtest.New(t)
	wedge := hostileProgram(t, "wedge.sh")
	defineSensor(t, db.Pool, fmt.Sprintf(`
ref: demo.wedge
label: Will not stop
runtime: core.sensor.shell
entrypoint: %s
triggers: [{ref: demo.hostile}]
`, wedge))
	defineSensor(t, db.Pool, fmt.Sprintf(tickerManifest, sensorProgram(t, "ticker.py")))
	// A stop timeout longer than the lease (3 intervals): a stop that held
	// the placement loop would let every other lease lapse.
	e := nobodyEnv(t, db, "ATTUNE__SENSOR__STOP_TIMEOUT=5")
	w := start(t, e, "sensor", "run", "--name", "wg-1", "--heartbeat-interval", superviseHB.String(), "--runtimes", "shell,python")
	waitUntil(t, w, 30*time.Second, "the ticker to emit and the wedge to freeze its helper", func() bool {
		ev, ok := latestEvent(t, db.Pool, "demo.ticker")
		return ok && ev.Worker == "wg-1" && strings.Contains(w.stderr.String(), "froze the helper")
	})
	if res := run(t, e, "sensor", "disable", "demo.wedge"); res.Code != 0 {
		t.Fatalf("sensor disable: exit %d\n%s", res.Code, res.Stderr)
	}
	// Through the whole stop (5 s, then a kill) and beyond: the ticker
	// stays wg-1's.
	deadline := time.Now().Add(5*time.Second + 3*superviseHB)
	for time.Now().Before(deadline) {
		if owner, _ := holder(t, db.Pool, "demo.ticker"); owner != "wg-1" {
			t.Fatalf("while the wedged sensor stopped, the ticker's lease lapsed (holder %q)\n%s", owner, w.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if left := testsupport.WaitGone(wedge, 10*time.Second); len(left) > 0 {
		t.Fatalf("the wedged sensor's processes are still there: %v", left)
	}
	var lapsed int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM sensor_ownership o JOIN sensor_workload sw ON sw.id = o.workload
		JOIN sensor s ON s.id = sw.sensor WHERE s.ref = 'demo.ticker' AND o.ended_at IS NOT NULL`).Scan(&lapsed); err != nil || lapsed != 0 {
		t.Errorf("the ticker's ownership ended %d times (%v); want never", lapsed, err)
	}
	stopSensor(t, w, db.Pool, "wg-1")
}

// TestSensorCannotReadTheWorkersSecrets is the packaged non-root setup:
// attunectl runs as an unprivileged service user (here nobody) with its
// configuration file, and sensors run as that same user. Two hostile
// sensors look for the configuration's contents, each other's tokens in
// /proc, and one plants a usercustomize.py for the next Python sensor of
// the same HOME. Each finds nothing, and the plant runs nowhere.
func TestSensorCannotReadTheWorkersSecrets(t *testing.T) {
	t.Parallel()
	testsupport.RequireRoot(t, "it runs attunectl as another user (nobody), as a packaged service does")
	// Through PgBouncer on loopback TCP: the test server's socket is its
	// own user's.
	db := dbtest.NewPgBouncer(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	own := func(p string) {
		t.Helper()
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	// The service's own directory: its configuration (with a marker the
	// sensors look for) and its HOME.
	svc := readableDir(t, "asvc-")
	conf := filepath.Join(svc, "etc")
	home := filepath.Join(svc, "home")
	for _, d := range []string{conf, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		own(d)
	}
	const marker = "config-marker-7f3a"
	configFile := filepath.Join(conf, "config.yaml")
	if err := os.WriteFile(configFile, []byte(fmt.Sprintf("# %s\ndatabase:\n  url: %q\n", marker, db.PoolerURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	own(configFile)
	bin := filepath.Join(readableDir(t, "abin-"), "attunectl")
	copyFile(t, binary(t), bin, 0o755)

	snoop := hostileProgram(t, "snoop.py")
	manifest := func(ref string) string {
		return fmt.Sprintf(`
ref: %s
label: Snoops
runtime: core.sensor.python
entrypoint: %s
triggers: [{ref: %s_found, config: {marker: %s, paths: [%q, %q]}}]
`, ref, snoop, ref, marker, configFile, conf)
	}
	defineSensor(t, db.Pool, manifest("demo.snoop_a"))
	var environ []string
	for _, kv := range env(t) {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "ATTUNE__SENSOR__RUN_AS=") && !strings.HasPrefix(kv, "PATH=") {
			environ = append(environ, kv)
		}
	}
	environ = append(environ, "HOME="+home, "PATH=/usr/local/bin:/usr/bin:/bin")
	args := []string{"--config", configFile, "sensor", "run", "--name", "snoop-1", "--heartbeat-interval", superviseHB.String(), "--runtimes", "python"}
	w := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(bin, args...)
	w.cmd.Dir, w.cmd.Env = svc, environ
	w.cmd.Stdout, w.cmd.Stderr = w.stdout, w.stderr
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		if !w.exited() {
			_ = w.cmd.Process.Kill()
			<-w.done
		}
	})
	type report struct {
		Found   []string `json:"found"`
		Tried   int      `json:"tried"`
		Tokens  int      `json:"tokens"`
		Pids    int      `json:"pids"`
		Planted bool     `json:"planted"`
		Victim  bool     `json:"victim"`
	}
	var a, b report
	waitUntil(t, w, 30*time.Second, "the first snoop's report", func() bool { return hostileEvent(t, db, "demo.snoop_a", &a) })
	// The second starts once the first has planted its usercustomize.py
	// and while the first still runs (its token in its environment).
	defineSensor(t, db.Pool, manifest("demo.snoop_b"))
	waitUntil(t, w, 30*time.Second, "the second snoop's report", func() bool { return hostileEvent(t, db, "demo.snoop_b", &b) })
	for name, r := range map[string]report{"first": a, "second": b} {
		if r.Tried == 0 {
			t.Errorf("the %s snoop read nothing: the test proves nothing", name)
		}
		if len(r.Found) > 0 {
			t.Errorf("the %s snoop read the worker's configuration: %v", name, r.Found)
		}
		if r.Tokens > 0 {
			t.Errorf("the %s snoop read %d other tokens in /proc", name, r.Tokens)
		}
	}
	if !a.Planted {
		t.Error("the first snoop could not plant its usercustomize.py: the test proves nothing")
	}
	if b.Victim {
		t.Error("the second snoop ran the first one's usercustomize.py")
	}
	stopSensor(t, w, db.Pool, "snoop-1")
}

// TestForkBombsAreBoundedPerSensor: two sensors of the same user start 200
// processes each at once under sensor.limits.processes 40. Each is bounded
// by its own box's cgroup, not by a count shared by the user: both run, and
// neither gets more than 40.
func TestForkBombsAreBoundedPerSensor(t *testing.T) {
	t.Parallel()
	testsupport.RequireRoot(t, "the sensors run as nobody in cgroups of their own")
	db := dbtest.New(t)
	bomb := hostileProgram(t, "forkbomb.py")
	for _, ref := range []string{"demo.bomb_a", "demo.bomb_b"} {
		defineSensor(t, db.Pool, fmt.Sprintf(`
ref: %s
label: Fork bomb
runtime: core.sensor.python
entrypoint: %s
triggers: [{ref: %s_report}]
`, ref, bomb, ref))
	}
	e := nobodyEnv(t, db, "ATTUNE__SENSOR__LIMITS__PROCESSES=40")
	w := start(t, e, "sensor", "run", "--name", "bomb-1", "--heartbeat-interval", superviseHB.String(), "--runtimes", "shell,python")
	for _, ref := range []string{"demo.bomb_a", "demo.bomb_b"} {
		var got struct {
			Running int `json:"running"`
		}
		waitUntil(t, w, 30*time.Second, ref+"'s report", func() bool { return hostileEvent(t, db, ref, &got) })
		if got.Running < 20 || got.Running > 40 {
			t.Errorf("%s ran %d processes; want at most its limit (40) and not starved by the other (20 or more)", ref, got.Running)
		}
	}
	stopSensor(t, w, db.Pool, "bomb-1")
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEntrypointsAreJudgedAsTheSensorsUser: as root with sensors run as
// nobody, an entrypoint in a directory only root may enter is reported the
// same whether it exists or not: `sensor list` tells nothing nobody could
// not find out itself.
func TestEntrypointsAreJudgedAsTheSensorsUser(t *testing.T) {
	t.Parallel()
	testsupport.RequireRoot(t, "it hides root-only paths from sensors run as nobody")
	db := dbtest.New(t)
	private := t.TempDir() // 0700, root's
	exists := filepath.Join(private, "exists.sh")
	if err := os.WriteFile(exists, []byte("#!/bin/sh\nsleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for ref, entry := range map[string]string{"demo.exists": exists, "demo.missing": filepath.Join(private, "missing.sh")} {
		defineSensor(t, db.Pool, fmt.Sprintf(`
ref: %s
label: Root-only entrypoint
runtime: core.sensor.shell
entrypoint: %s
triggers: [{ref: %s_t}]
`, ref, entry, ref))
	}
	e := nobodyEnv(t, db)
	w := start(t, e, "sensor", "run", "--name", "ep-1", "--heartbeat-interval", superviseHB.String(), "--runtimes", "shell")
	reasons := map[string]string{}
	waitUntil(t, w, 30*time.Second, "both sensors to be reported unrunnable", func() bool {
		res := run(t, e, "sensor", "list", "-o", "json")
		var listed []struct {
			Ref    string `json:"ref"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal([]byte(res.Stdout), &listed) != nil {
			return false
		}
		for _, l := range listed {
			reasons[l.Ref] = l.Reason
		}
		return strings.Contains(reasons["demo.exists"], "entrypoint") && strings.Contains(reasons["demo.missing"], "entrypoint")
	})
	a := strings.ReplaceAll(reasons["demo.exists"], "exists.sh", "X")
	b := strings.ReplaceAll(reasons["demo.missing"], "missing.sh", "X")
	if a != b || !strings.Contains(a, "not readable by nobody") {
		t.Errorf("the reasons tell a root-only file from a missing one:\n%s\n%s", reasons["demo.exists"], reasons["demo.missing"])
	}
	stopSensor(t, w, db.Pool, "ep-1")
}
