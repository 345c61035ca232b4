package main

// The built binary behind a real PgBouncer (pool_mode = transaction, stock
// otherwise: no ignore_startup_parameters), given nothing but the pooler's
// plain URL. See pkg/dbtest's PgBouncer and pkg/database's pooler mode.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

func poolerEnv(t *testing.T, db *dbtest.DB, extra ...string) []string {
	t.Helper()
	return env(t, append([]string{"ATTUNE__DATABASE__URL=" + db.PoolerURL}, extra...)...)
}

// TestPgBouncerEveryCommand runs every command through the pooler, from an
// empty database.
func TestPgBouncerEveryCommand(t *testing.T) {
	t.Parallel()
	db := dbtest.NewPgBouncerEmpty(t)
	e := poolerEnv(t, db)
	latest := latestMigration(t)
	latestFile := fmt.Sprintf("%05d", latest) // as migrate up and down print it
	steps := []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"migrate", "status"}, "pending"},
		{[]string{"migrate", "version"}, fmt.Sprintf("version 0 of %d", latest)},
		{[]string{"migrate", "up"}, latestFile},
		{[]string{"migrate", "status", "-o", "json"}, `"applied": true`},
		{[]string{"migrate", "version"}, latestVersion(t)},
		{[]string{"runtime", "list"}, "core.sensor.python"},
		{[]string{"runtime", "list", "core.sensor.python", "-o", "yaml"}, "python3"},
		{[]string{"runtime", "add", "--ref", "acme.sensor.bash", "--name", "Bash", "--command", "bash --version", "--pattern", "GNU bash"}, "acme.sensor.bash"},
		{[]string{"runtime", "list", "-o", "wide"}, "acme.sensor.bash"},
		{[]string{"runtime", "verify", "core.sensor.shell", "acme.sensor.bash"}, "bash"},
		{[]string{"sensor", "run", "--dry-run"}, `"runtimes"`},
		{[]string{"sensor", "run", "--once", "--name", "sensor-pooled"}, ""},
		{[]string{"worker", "list"}, "sensor-pooled"},
		{[]string{"worker", "list", "--role", "sensor", "--runtime", "shell", "-o", "json"}, `"name": "sensor-pooled"`},
		{[]string{"worker", "stale", "--older-than", "5m"}, ""},
		{[]string{"worker", "prune", "--dry-run"}, ""},
		{[]string{"worker", "prune", "--yes"}, ""},
		{[]string{"worker", "prune", "--delete", "--older-than", "1s", "--yes"}, ""},
		{[]string{"runtime", "remove", "acme.sensor.bash"}, ""},
		{[]string{"migrate", "down"}, latestFile},
		{[]string{"migrate", "up"}, latestFile},
		{[]string{"config", "view"}, "schema"},
	}
	for _, s := range steps {
		res := run(t, e, s.args...)
		if res.Code != 0 || !strings.Contains(res.Stdout, s.want) {
			t.Errorf("attunectl %s through PgBouncer: exit %d, want 0 and %q in stdout\nstdout:\n%s\nstderr:\n%s",
				strings.Join(s.args, " "), res.Code, s.want, res.Stdout, res.Stderr)
		}
	}
}

// TestPgBouncerConcurrentMigrateUp: eight `attunectl migrate up` at once
// through the pooler all exit 0, each migration is applied once, and no
// advisory lock is left behind (a direct `migrate status` right after does
// not wait).
func TestPgBouncerConcurrentMigrateUp(t *testing.T) {
	t.Parallel()
	db := dbtest.NewPgBouncerEmpty(t)
	e := poolerEnv(t, db)
	var wg sync.WaitGroup
	results := make([]result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(t, e, "migrate", "up")
		}()
	}
	wg.Wait()
	applied := 0
	for i, res := range results {
		if res.Code != 0 {
			t.Errorf("migrate up %d: exit %d\n%s", i, res.Code, res.Stderr)
		}
		applied += strings.Count(res.Stdout, "applied ")
	}
	if n := migrationCount(t); applied != n {
		t.Errorf("the eight runs applied %d migrations between them, want %d (each once)", applied, n)
	}
	ctx := context.Background()
	var dup, locks int
	if err := db.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT version_id FROM attune.goose_db_version GROUP BY 1 HAVING count(*) > 1) d),
		(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`).Scan(&dup, &locks); err != nil {
		t.Fatal(err)
	}
	if dup != 0 || locks != 0 {
		t.Errorf("after eight concurrent migrate up: %d versions recorded twice, %d advisory locks held", dup, locks)
	}
	begin := time.Now()
	res := run(t, dbEnv(t, db), "migrate", "status")
	if res.Code != 0 || strings.Contains(res.Stdout, "pending") || time.Since(begin) > 10*time.Second {
		t.Errorf("direct migrate status after them: exit %d in %s\n%s%s", res.Code, time.Since(begin), res.Stdout, res.Stderr)
	}
}

// TestPgBouncerStatementTimeoutOnLockedTable: database.statement_timeout
// still bounds a blocked command behind the pooler, and the message says
// the table is locked and by whom.
func TestPgBouncerStatementTimeoutOnLockedTable(t *testing.T) {
	t.Parallel()
	db := dbtest.NewPgBouncer(t)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE worker IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var lockPID int
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&lockPID); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	res := run(t, poolerEnv(t, db, "ATTUNE__DATABASE__STATEMENT_TIMEOUT=2"), "worker", "list")
	took := time.Since(begin)
	want := "timed out after 2s: the worker table is locked or the server is overloaded (locked exclusively by pid " + strconv.Itoa(lockPID)
	if res.Code != 1 || !strings.Contains(res.Stderr, want) {
		t.Errorf("worker list through PgBouncer on a locked table: exit %d, want 1 and %q\n%s", res.Code, want, res.Stderr)
	}
	if took > 10*time.Second {
		t.Errorf("gave up after %s; want about its 2s statement timeout", took)
	}
}

// TestPgBouncerSensorRunThroughTableLock: `sensor run` through the pooler
// heartbeats every second for minutes — 45 s, then through a 20 s ACCESS
// EXCLUSIVE lock on the worker table (its heartbeats time out and are
// retried), then 45 s more, never missing three in a row outside the lock —
// and deregisters on SIGTERM.
func TestPgBouncerSensorRunThroughTableLock(t *testing.T) {
	t.Parallel()
	db := dbtest.NewPgBouncer(t)
	ctx := context.Background()
	p := start(t, poolerEnv(t, db, "ATTUNE__DATABASE__STATEMENT_TIMEOUT=3", "ATTUNE_SENSOR_RUNTIMES=shell"),
		"sensor", "run", "--name", "sensor-bounced", "--heartbeat-interval", "1s")
	lastBeat := func() time.Time {
		t.Helper()
		var at time.Time
		err := db.Pool.QueryRow(ctx, "SELECT coalesce(last_heartbeat, 'epoch') FROM worker WHERE name = 'sensor-bounced'").Scan(&at)
		if err != nil && !strings.Contains(err.Error(), "no rows") {
			t.Fatal(err)
		}
		return at
	}
	waitBeatAfter := func(after time.Time, within time.Duration) time.Time {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if at := lastBeat(); at.After(after) {
				return at
			}
			if p.exited() {
				t.Fatalf("sensor run exited\nstderr:\n%s", p.stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("no heartbeat after %s within %s\nstderr:\n%s", after.Format(time.RFC3339Nano), within, p.stderr)
		return time.Time{}
	}
	// steady watches the heartbeats for d: each is on whatever server
	// connection the pooler lends, and none may be missing for longer than
	// three intervals (the grace).
	steady := func(phase string, d time.Duration) {
		t.Helper()
		begin := time.Now()
		prev, beats, maxGap := lastBeat(), 0, time.Duration(0)
		for time.Since(begin) < d {
			time.Sleep(250 * time.Millisecond)
			if p.exited() {
				t.Fatalf("%s: sensor run exited\nstderr:\n%s", phase, p.stderr)
			}
			if at := lastBeat(); at.After(prev) {
				maxGap = max(maxGap, at.Sub(prev))
				prev, beats = at, beats+1
			}
		}
		var dbNow time.Time
		if err := db.Pool.QueryRow(ctx, "SELECT now()").Scan(&dbNow); err != nil {
			t.Fatal(err)
		}
		maxGap = max(maxGap, dbNow.Sub(prev))
		t.Logf("%s: %d heartbeats in %s through the pooler, longest gap %s", phase, beats, d, maxGap.Round(10*time.Millisecond))
		if maxGap > 3*time.Second || beats < int(d/time.Second)/2 {
			t.Errorf("%s: %d heartbeats in %s, longest gap %s: want one a second, never three missing", phase, beats, d, maxGap)
		}
	}
	waitBeatAfter(time.Time{}, 20*time.Second)
	steady("before the lock", 45*time.Second)

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE worker IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Second)
	if p.exited() {
		t.Fatalf("sensor run exited during the table lock\nstderr:\n%s", p.stderr)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var dbNow time.Time
	if err := db.Pool.QueryRow(ctx, "SELECT now()").Scan(&dbNow); err != nil {
		t.Fatal(err)
	}
	after := waitBeatAfter(dbNow, 15*time.Second)
	t.Logf("first heartbeat after the 20s lock: %s after its release", after.Sub(dbNow).Round(10*time.Millisecond))
	if !strings.Contains(p.stderr.String(), "heartbeat") {
		t.Errorf("no heartbeat failure logged during the lock\nstderr:\n%s", p.stderr)
	}
	steady("after the lock", 45*time.Second)

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("sensor run exit %d after SIGTERM\nstderr:\n%s", code, p.stderr)
	}
	var status string
	if err := db.Pool.QueryRow(ctx, "SELECT status::text FROM worker WHERE name = 'sensor-bounced'").Scan(&status); err != nil || status != "inactive" {
		t.Errorf("after SIGTERM the row is %q (%v), want inactive", status, err)
	}
}

// TestReadOnlyCommandsCreateNothing: `--schema typo worker list` says the
// schema is not migrated and creates nothing; `migrate status` and `migrate
// version` on a database never migrated create neither the schema nor
// goose's version table — directly and through the pooler.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.NewPgBouncerEmpty(t)
	for _, e := range [][]string{dbEnv(t, db), poolerEnv(t, db)} {
		res := run(t, e, "--schema", "atune", "worker", "list")
		if res.Code == 0 || !strings.Contains(res.Stderr, `schema "atune" is not migrated`) {
			t.Errorf("worker list with a mistyped schema: exit %d\n%s", res.Code, res.Stderr)
		}
		for _, args := range [][]string{{"migrate", "status"}, {"migrate", "version"}} {
			if res := run(t, e, args...); res.Code != 0 {
				t.Errorf("attunectl %s on a database never migrated: exit %d\n%s", strings.Join(args, " "), res.Code, res.Stderr)
			}
		}
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname IN ('atune', 'attune'))
		+ (SELECT count(*) FROM pg_class WHERE relname = 'goose_db_version')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("read-only commands created %d schemas or tables (%v)", n, err)
	}
}
