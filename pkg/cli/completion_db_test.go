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
