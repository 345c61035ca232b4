package cli

import (
	"strings"
	"testing"
)

// TestWorkerNamesCompletionAndFilter completes worker names from the
// database and filters worker list, stale and prune by NAME arguments.
func TestWorkerNamesCompletionAndFilter(t *testing.T) {
	t.Parallel()
	db := fleetDB(t)
	env := rtEnv(db, "/nonexistent")

	r := rtExec(t, env, "", "__complete", "worker", "list", "sensor-web-01", "sensor-web")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "sensor-web-02\n:4\n") {
		t.Errorf("completing names: exit %d\n%s", r.Code, r.Stdout)
	}
	r = rtExec(t, env, "", "__complete", "worker", "prune", "sensor-b")
	if !strings.HasPrefix(r.Stdout, "sensor-batch-01\n:4\n") {
		t.Errorf("completing prune names:\n%s", r.Stdout)
	}
	// A name with LIKE wildcards is matched literally.
	r = rtExec(t, env, "", "__complete", "worker", "list", "sensor%")
	if !strings.HasPrefix(r.Stdout, ":4\n") {
		t.Errorf("a %% in the prefix must match literally:\n%s", r.Stdout)
	}

	r = rtExec(t, env, "", "worker", "list", "sensor-web-01", "sensor-batch-01", "no-such-worker", "-o", "name")
	if r.Code != 0 || r.Stdout != "sensor-batch-01\nsensor-web-01\n" {
		t.Errorf("worker list NAME...: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "worker", "prune", "sensor-web-02", "--dry-run", "-o", "name")
	if r.Code != 0 || r.Stdout != "" || !strings.Contains(r.Stderr, "name sensor-web-02") {
		t.Errorf("worker prune NAME --dry-run: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestSensorRefsCompletion completes sensor refs from the database for
// every command that takes them, and worker names for cordon and drain.
func TestSensorRefsCompletion(t *testing.T) {
	t.Parallel()
	db, _ := sensorFleet(t)
	env := rtEnv(db, "/nonexistent")
	for _, args := range [][]string{
		{"__complete", "sensor", "list", "acme.d"},
		{"__complete", "sensor", "enable", "acme.heartbeat", "acme.d"},
		{"__complete", "sensor", "disable", "acme.d"},
		{"__complete", "event", "list", "--sensor", "acme.d"},
	} {
		r := rtExec(t, env, "", args...)
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "acme.disk_watch\n:4\n") {
			t.Errorf("%v: exit %d\n%s", args, r.Code, r.Stdout)
		}
	}
	r := rtExec(t, env, "", "__complete", "sensor", "enable", "acme.heartbeat", "acme.h")
	if !strings.HasPrefix(r.Stdout, ":4\n") {
		t.Errorf("a ref already on the line is offered again:\n%s", r.Stdout)
	}
	r = rtExec(t, env, "", "__complete", "worker", "cordon", "evil")
	if !strings.HasPrefix(r.Stdout, "evil") {
		t.Errorf("worker cordon completes no worker names:\n%s", r.Stdout)
	}
	r = rtExec(t, env, "", "__complete", "worker", "drain", "x", "")
	if !strings.HasPrefix(r.Stdout, ":4\n") {
		t.Errorf("worker drain completes a second name:\n%s", r.Stdout)
	}
}
