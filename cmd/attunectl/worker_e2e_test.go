package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// staleFleet inserts two live sensor workers, one stale sensor worker and
// one stale action worker.
func staleFleet(t *testing.T) *dbtest.DB {
	t.Helper()
	db := dbtest.New(t)
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, last_heartbeat) VALUES
		('sensor-live-1', 'sensor', 'local', 'active', 'h1', '{"runtimes": ["python", "shell"]}', now()),
		('sensor-live-2', 'sensor', 'local', 'active', 'h2', '{"runtimes": ["shell"]}', now()),
		('sensor-dead', 'sensor', 'local', 'active', 'h3', '{"runtimes": ["python"]}', now() - interval '1 hour'),
		('action-dead', 'action', 'remote', 'active', 'h4', NULL, now() - interval '1 hour')`)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func workerStatus(t *testing.T, db *dbtest.DB, name string) string {
	t.Helper()
	var s string
	if err := db.Pool.QueryRow(context.Background(), "SELECT coalesce(status::text, '') FROM worker WHERE name = $1", name).Scan(&s); err != nil {
		t.Fatalf("status of %s: %v", name, err)
	}
	return s
}

// Without a terminal and without --yes, prune refuses: exit status 2, a
// message that says what to pass, and nothing changed.
func TestWorkerPruneRefusesWithoutTerminal(t *testing.T) {
	t.Parallel()
	db := staleFleet(t)
	for _, args := range [][]string{
		{"worker", "prune"},
		{"worker", "prune", "--delete", "--older-than", "1m"},
	} {
		// stdin is a pipe with "y" in it: an answer is not a terminal.
		res := runIn(t, t.TempDir(), dbEnv(t, db), "y\n", args...)
		if res.Code != 2 || res.Stdout != "" ||
			!strings.Contains(res.Stderr, "without confirmation: stdin is not a terminal (pass --yes to prune, or --dry-run to see what would change)") {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q", args, res.Code, res.Stdout, res.Stderr)
		}
	}
	if s := workerStatus(t, db, "sensor-dead"); s != "active" {
		t.Errorf("the refused prune changed sensor-dead to %s", s)
	}
}

func TestWorkerStaleAndPrune(t *testing.T) {
	t.Parallel()
	db := staleFleet(t)
	environ := dbEnv(t, db)

	res := run(t, environ, "worker", "stale", "--exit-code", "-o", "name")
	if res.Code != 3 || res.Stdout != "action-dead\nsensor-dead\n" || res.Stderr != "" {
		t.Fatalf("worker stale --exit-code: exit %d\nstdout %q\nstderr %q", res.Code, res.Stdout, res.Stderr)
	}

	res = run(t, environ, "worker", "prune", "--dry-run")
	if res.Code != 0 || !strings.Contains(res.Stdout, "sensor-dead") || strings.Contains(res.Stdout, "action-dead") ||
		!strings.Contains(res.Stderr, "dry run: 1 stale worker would be marked inactive (role sensor); nothing was changed") {
		t.Fatalf("prune --dry-run: exit %d\nstdout %q\nstderr %q", res.Code, res.Stdout, res.Stderr)
	}

	res = run(t, environ, "worker", "prune", "--yes")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "marked inactive 1 stale worker (role sensor; 1 batch, ") {
		t.Fatalf("prune --yes: exit %d\nstdout %q\nstderr %q", res.Code, res.Stdout, res.Stderr)
	}
	if s := workerStatus(t, db, "sensor-dead"); s != "inactive" {
		t.Errorf("sensor-dead is %s after prune", s)
	}
	if s := workerStatus(t, db, "action-dead"); s != "active" {
		t.Errorf("prune of sensors touched the action worker: %s", s)
	}

	res = run(t, environ, "worker", "stale", "--exit-code", "--role", "sensor")
	if res.Code != 0 || res.Stdout != "" || res.Stderr != "No stale workers.\n" {
		t.Errorf("worker stale after prune: exit %d\nstdout %q\nstderr %q", res.Code, res.Stdout, res.Stderr)
	}

	res = run(t, environ, "worker", "list", "--runtime", "python", "-o", "name")
	if res.Code != 0 || res.Stdout != "sensor-dead\nsensor-live-1\n" {
		t.Errorf("worker list --runtime python: exit %d\nstdout %q\nstderr %q", res.Code, res.Stdout, res.Stderr)
	}
}

// --watch redraws until SIGINT and then exits 0.
func TestWorkerListWatchStopsOnSIGINT(t *testing.T) {
	t.Parallel()
	db := staleFleet(t)
	p := start(t, dbEnv(t, db), "worker", "list", "--watch", "--watch-interval", "100ms", "-o", "name", "--role", "action")
	waitFor(t, 30*time.Second, "three listings", func() bool {
		return strings.Count(p.stdout.String(), "action-dead\n") >= 3 || p.exited()
	})
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGINT\nstderr %s", code, p.stderr)
	}
	if out := p.stdout.String(); !strings.HasPrefix(out, "action-dead\n---\naction-dead\n---\n") {
		t.Errorf("stdout %q", out)
	}
}

// prune --every keeps pruning until SIGTERM, then exits 0.
func TestWorkerPruneEveryStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	db := staleFleet(t)
	p := start(t, dbEnv(t, db), "worker", "prune", "--every", "1s", "--yes")
	waitFor(t, 30*time.Second, "the first round", func() bool { return workerStatus(t, db, "sensor-dead") == "inactive" || p.exited() })
	if _, err := db.Pool.Exec(context.Background(), "UPDATE worker SET last_heartbeat = now() - interval '1 hour' WHERE name = 'sensor-live-2'"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a later round", func() bool { return workerStatus(t, db, "sensor-live-2") == "inactive" || p.exited() })
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM\nstderr %s", code, p.stderr)
	}
	if s := workerStatus(t, db, "sensor-live-1"); s != "active" {
		t.Errorf("the live worker was pruned: %s", s)
	}
	if s := workerStatus(t, db, "action-dead"); s != "active" {
		t.Errorf("the action worker was pruned: %s", s)
	}
	if e := p.stderr.String(); !strings.Contains(e, "marked inactive 1 stale worker") || !strings.Contains(e, "stopped pruning") {
		t.Errorf("stderr:\n%s", e)
	}
}
