package database_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// TestPgBouncerStockTransactionMode: with the plain URL of a stock PgBouncer
// in transaction mode, Open detects the pooler, and every transaction — on
// whichever server connection the pooler lends — sees attunectl's
// search_path, statement_timeout and jit, while several clients run at once.
func TestPgBouncerStockTransactionMode(t *testing.T) {
	t.Parallel()
	tdb := dbtest.NewPgBouncer(t)
	ctx := context.Background()

	// What a stock PgBouncer does with attunectl's startup parameters.
	_, err := pgx.Connect(ctx, tdb.PoolerURL+"&search_path=attune")
	if err == nil || !strings.Contains(err.Error(), "unsupported startup parameter") {
		t.Fatalf("PgBouncer accepted search_path at startup (%v): the harness must run a stock configuration", err)
	}

	db, err := database.Open(ctx, database.Options{URL: tdb.PoolerURL, Schema: "attune", StatementTimeout: 1500 * time.Millisecond, MaxConns: 4})
	if err != nil {
		t.Fatalf("Open through PgBouncer: %v", err)
	}
	defer db.Close()
	if !db.Pooler {
		t.Fatal("Open did not detect the transaction pooler")
	}
	if !db.Runtime.Exists || !db.Worker.HasRole {
		t.Fatalf("introspection through the pooler found %+v %+v", db.Runtime, db.Worker)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				var sp, st, jit string
				var n int
				err := db.Pool.QueryRow(ctx, `SELECT current_setting('search_path'), current_setting('statement_timeout'),
					current_setting('jit'), (SELECT count(*) FROM runtime WHERE ref LIKE $1)`, "core.sensor.%").Scan(&sp, &st, &jit, &n)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d query %d: %w", g, i, err)
					return
				}
				if sp != `"attune", public` || st != "1500ms" || jit != "off" || n != 5 {
					errs <- fmt.Errorf("goroutine %d query %d: search_path %q statement_timeout %q jit %q runtimes %d", g, i, sp, st, jit, n)
					return
				}
				// No arguments: pgx sends a simple query.
				if _, err := db.Pool.Exec(ctx, "UPDATE runtime SET updated = updated WHERE ref = 'core.sensor.shell'"); err != nil {
					errs <- fmt.Errorf("goroutine %d exec %d: %w", g, i, err)
					return
				}
				// An explicit transaction keeps its settings to the end.
				err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, "SELECT 1 FROM worker LIMIT 1"); err != nil {
						return err
					}
					return tx.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&sp)
				})
				if err != nil || sp != `"attune", public` {
					errs <- fmt.Errorf("goroutine %d tx %d: %v (search_path %q)", g, i, err, sp)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A failed transaction still rolls back (the settings are not put in
	// front of ROLLBACK) and the connection stays usable.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT no_such_column FROM worker"); err == nil {
		t.Fatal("expected an error")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("rollback of a failed transaction through the pooler: %v", err)
	}

	// Inside a transaction the settings are not put in front again: a SET
	// LOCAL of the transaction's own holds for its later statements, and a
	// statement described in one round trip and bound in the next (what
	// worker list does) is still the unnamed statement when it is bound.
	// After the transaction the settings are back.
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return err
		}
		var st string
		var n int64
		if err := tx.QueryRow(ctx, "SELECT current_setting('statement_timeout'), (SELECT count(*) FROM runtime WHERE ref LIKE $1)",
			pgx.QueryExecModeDescribeExec, "core.sensor.%").Scan(&st, &n); err != nil {
			return fmt.Errorf("a described statement bound in the next round trip: %w", err)
		}
		if st != "0" || n != 5 {
			return fmt.Errorf("statement_timeout %q after SET LOCAL, %d runtimes; want 0 and 5", st, n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("transaction through the pooler: %v", err)
	}
	var st string
	if err := db.Pool.QueryRow(ctx, "SELECT current_setting('statement_timeout')").Scan(&st); err != nil || st != "1500ms" {
		t.Fatalf("statement_timeout after the transaction: %q, %v; want 1500ms", st, err)
	}

	// statement_timeout still bounds a statement.
	begin := time.Now()
	_, err = db.Pool.Exec(ctx, "SELECT pg_sleep(10)")
	if !database.IsTimeout(err) || time.Since(begin) > 5*time.Second {
		t.Fatalf("pg_sleep(10) through the pooler with statement_timeout 1.5s: %v after %v", err, time.Since(begin))
	}
}

// TestDirectConnectionKeepsSessionSettings: a direct connection is not
// mistaken for a pooler and keeps its startup parameters.
func TestDirectConnectionKeepsSessionSettings(t *testing.T) {
	t.Parallel()
	tdb := dbtest.New(t)
	db, err := database.Open(context.Background(), database.Options{URL: tdb.URL, Schema: "attune", StatementTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Pooler {
		t.Fatal("a direct connection was taken for a pooler")
	}
	cc := db.Pool.Config().ConnConfig
	if m := cc.DefaultQueryExecMode; m != pgx.QueryExecModeCacheStatement {
		t.Errorf("direct connection query exec mode = %v, want the statement cache", m)
	}
	if cc.AfterNetConnect != nil {
		t.Error("a direct connection's bytes go through the pooler rewriting")
	}
	for _, p := range []string{"search_path", "jit", "statement_timeout"} {
		if cc.RuntimeParams[p] == "" {
			t.Errorf("a direct connection does not send %s at startup", p)
		}
	}
}

// TestPgBouncerConcurrentMigrateUp: eight `migrate up` at once through the
// pooler all succeed, each migration is applied once, and no advisory lock
// is left behind.
func TestPgBouncerConcurrentMigrateUp(t *testing.T) {
	t.Parallel()
	tdb := dbtest.NewPgBouncerEmpty(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := database.Open(ctx, database.Options{URL: tdb.PoolerURL, Schema: "attune", MaxConns: 2})
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = database.MigrateUp(ctx, db)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrate up %d through the pooler: %v", i, err)
		}
	}
	rows, err := tdb.Pool.Query(ctx, "SELECT version_id, count(*) FROM attune.goose_db_version GROUP BY 1 ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var v [2]int64
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := embeddedMigrations(t); len(counts) != n+1 { // version 0 and every embedded migration
		t.Errorf("goose_db_version has versions %v, want 0 and the %d embedded migrations", counts, n)
	}
	for _, c := range counts {
		if c[1] != 1 {
			t.Errorf("version %d recorded %d times", c[0], c[1])
		}
	}
	var locks int
	if err := tdb.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if locks != 0 {
		t.Errorf("%d advisory locks held after the migrations", locks)
	}
	// A direct `migrate status` right after does not wait.
	db, err := database.Open(ctx, database.Options{URL: tdb.URL, Schema: "attune", MigrationLockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if res, err := m.Up(ctx); err != nil || len(res) != 0 {
		t.Errorf("a direct migrate up after them: %v, %d applied", err, len(res))
	}
}

// TestMigrationLockHeldSaysWho: a migration lock held elsewhere (here a
// session lock, as older releases leaked through a pooler) makes `migrate
// up` give up after its bound with the holder's pid and application_name.
func TestMigrationLockHeldSaysWho(t *testing.T) {
	t.Parallel()
	tdb := dbtest.NewPgBouncerEmpty(t)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, tdb.URL+"&application_name=leaky")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	var pid int
	if err := holder.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", database.MigrationLockID("attune")); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{tdb.PoolerURL, tdb.URL} {
		var logged bytes.Buffer
		db, err := database.Open(ctx, database.Options{URL: url, Schema: "attune", MigrationLockTimeout: 2 * time.Second,
			Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		if err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		err = database.MigrateUp(ctx, db)
		db.Close()
		var lockErr *database.MigrationLockError
		if !errors.As(err, &lockErr) {
			t.Fatalf("migrate up while the lock is held: %v, want a MigrationLockError", err)
		}
		for _, want := range []string{fmt.Sprintf("pid %d", pid), `application_name "leaky"`, "pg_terminate_backend", "gave up after 2s"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if d := time.Since(begin); d > 10*time.Second {
			t.Errorf("gave up after %v, want about 2s", d)
		}
		t.Logf("%s", err)
		// It said so while waiting, not only when it gave up.
		if l := logged.String(); !strings.Contains(l, `msg="waiting for the migration lock"`) || !strings.Contains(l, fmt.Sprintf("pid %d", pid)) {
			t.Errorf("nothing logged while waiting for the lock: %q", l)
		}
	}
}

// TestPgBouncerIgnoringStartupParameters: a PgBouncer told to ignore
// attunectl's startup parameters accepts them and drops them; Open notices
// that search_path is not what it asked for and uses pooler mode, so the
// settings still hold in every transaction.
func TestPgBouncerIgnoringStartupParameters(t *testing.T) {
	t.Parallel()
	b := dbtest.StartPgBouncer(t, "ignore_startup_parameters = search_path,jit,statement_timeout")
	tdb := dbtest.New(t)
	ctx := context.Background()
	db, err := database.Open(ctx, database.Options{URL: b.URL(tdb.Name), Schema: "attune", StatementTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Open through a PgBouncer ignoring startup parameters: %v", err)
	}
	defer db.Close()
	if !db.Pooler {
		t.Fatal("Open did not notice the dropped startup parameters")
	}
	for range 20 {
		var sp, st string
		if err := db.Pool.QueryRow(ctx, "SELECT current_setting('search_path'), current_setting('statement_timeout') FROM worker LIMIT 1").Scan(&sp, &st); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if err := db.Pool.QueryRow(ctx, "SELECT current_setting('search_path'), current_setting('statement_timeout')").Scan(&sp, &st); err != nil {
			t.Fatal(err)
		}
		if sp != `"attune", public` || st != "2s" {
			t.Fatalf("search_path %q statement_timeout %q through the pooler", sp, st)
		}
	}
}

// A PostgreSQL restart behind PgBouncer: with the stock server_login_retry
// (15 s) a login that fails while the server is down makes PgBouncer wait
// that long before it tries the server again, and every client waits with
// it — a worker's heartbeats and renewals too, long enough to lose every
// lease at a short interval. With server_login_retry = 1 statements resume
// about a second after the server is back. The test checks that they
// resume in both cases and reports how long they were refused or held;
// `attunectl help pgbouncer` quotes the figures.
func TestPgBouncerRestartRecovery(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"stock", ""},
		{"server_login_retry=1", "server_login_retry = 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := dbtest.NewServer(t, embeddedpg.Options{Ephemeral: true, TrustSocket: true})
			b := dbtest.StartPgBouncerFor(t, srv, tc.extra)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			db, err := database.Open(ctx, database.Options{URL: b.URL("postgres"), ConnectTimeout: 5 * time.Second})
			if err != nil {
				t.Fatalf("connecting through PgBouncer: %v", err)
			}
			defer db.Close()
			if !db.Pooler {
				t.Fatalf("PgBouncer in transaction mode was not detected")
			}
			probe := func() error {
				qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
				defer qcancel()
				var one int
				return db.Pool.QueryRow(qctx, "SELECT 1").Scan(&one)
			}
			if err := probe(); err != nil {
				t.Fatalf("before the restart: %v", err)
			}
			restarted := make(chan time.Duration, 1)
			begin := time.Now()
			go func() {
				t0 := time.Now()
				if err := srv.Restart(ctx); err != nil {
					t.Errorf("restarting PostgreSQL: %v", err)
				}
				restarted <- time.Since(t0)
			}()
			// Statements keep coming while the server is down, as a
			// worker's do.
			var took time.Duration
			back := time.Time{}
			for time.Since(begin) < 90*time.Second {
				err := probe()
				if took == 0 {
					select {
					case took = <-restarted:
					default:
					}
				}
				if err == nil && took > 0 {
					back = time.Now()
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if back.IsZero() {
				t.Fatalf("no statement got through PgBouncer within 90 s of a PostgreSQL restart (%s)\n%s", tc.extra, b.Log())
			}
			t.Logf("%s: PostgreSQL restarted in %s; statements through PgBouncer resumed %s after the restart began",
				tc.name, took.Round(10*time.Millisecond), back.Sub(begin).Round(10*time.Millisecond))
		})
	}
}
