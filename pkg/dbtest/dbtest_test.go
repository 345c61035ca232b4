package dbtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

func TestMain(m *testing.M) { Main(m) }

// TestTimings runs first (tests run in file order, this one is not
// parallel), so it measures the cold start of the shared server, the
// template's migration and the clones.
func TestTimings(t *testing.T) {
	begin := time.Now()
	srv := Server(t)
	t.Logf("shared server start (initdb + start): %v", time.Since(begin).Round(time.Millisecond))
	if !strings.HasPrefix(srv.DataDir(), "/tmp/"+rootPrefix) {
		t.Errorf("shared server data dir %s, want it under /tmp/%s*", srv.DataDir(), rootPrefix)
	}

	begin = time.Now()
	New(t)
	t.Logf("first New (template migration + clone): %v", time.Since(begin).Round(time.Millisecond))

	const n = 10
	begin = time.Now()
	for range n {
		New(t)
	}
	t.Logf("New (clone + pool): %v each, over %d", (time.Since(begin) / n).Round(time.Millisecond), n)

	begin = time.Now()
	for range n {
		NewEmpty(t)
	}
	t.Logf("NewEmpty: %v each, over %d", (time.Since(begin) / n).Round(time.Millisecond), n)
}

func exists(t *testing.T, db *DB, sql string, args ...any) bool {
	t.Helper()
	var ok bool
	if err := db.Pool.QueryRow(context.Background(), sql, args...).Scan(&ok); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return ok
}

func TestNewIsMigrated(t *testing.T) {
	t.Parallel()
	db := New(t)
	if db.Schema != "attune" || !strings.HasPrefix(db.Name, "t_testnewismigrated_") {
		t.Errorf("DB = %+v", db)
	}
	var searchPath string
	if err := db.Pool.QueryRow(context.Background(), "SHOW search_path").Scan(&searchPath); err != nil {
		t.Fatal(err)
	}
	if searchPath != "attune, public" {
		t.Errorf("search_path = %q", searchPath)
	}
	for _, table := range []string{"attune.worker", "attune.runtime", "worker"} {
		if !exists(t, db, "SELECT to_regclass($1) IS NOT NULL", table) {
			t.Errorf("table %s missing from a New database", table)
		}
	}
	if !exists(t, db, "SELECT count(*) > 0 FROM runtime WHERE ref = 'core.sensor.python'") {
		t.Errorf("seeded runtimes missing")
	}
	// The URL reaches the same database.
	conn, err := pgx.Connect(context.Background(), db.URL)
	if err != nil {
		t.Fatalf("connecting with URL %s: %v", db.URL, err)
	}
	defer conn.Close(context.Background())
	var name string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil || name != db.Name {
		t.Errorf("URL connects to %q (%v), want %q", name, err, db.Name)
	}
}

func TestNewIsIsolated(t *testing.T) {
	t.Parallel()
	a, b := New(t), New(t)
	if a.Name == b.Name {
		t.Fatalf("two New share database %s", a.Name)
	}
	ctx := context.Background()
	if _, err := a.Pool.Exec(ctx, "INSERT INTO worker (name, worker_type, worker_role) VALUES ('only-in-a', 'local', 'sensor')"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Pool.Exec(ctx, "CREATE TABLE scratch (v int)"); err != nil {
		t.Fatal(err)
	}
	if exists(t, b, "SELECT count(*) > 0 FROM worker WHERE name = 'only-in-a'") {
		t.Errorf("a worker inserted in %s is visible in %s", a.Name, b.Name)
	}
	if exists(t, b, "SELECT to_regclass('scratch') IS NOT NULL") {
		t.Errorf("a table created in %s is visible in %s", a.Name, b.Name)
	}
	if !exists(t, a, "SELECT count(*) = 1 FROM worker WHERE name = 'only-in-a'") {
		t.Errorf("the worker is missing from %s", a.Name)
	}
}

func TestNewEmptyIsNotMigrated(t *testing.T) {
	t.Parallel()
	db := NewEmpty(t)
	if exists(t, db, "SELECT count(*) > 0 FROM pg_namespace WHERE nspname = 'attune'") {
		t.Errorf("schema attune exists in a NewEmpty database")
	}
	if exists(t, db, "SELECT to_regclass('worker') IS NOT NULL") {
		t.Errorf("worker table exists in a NewEmpty database")
	}
}

func TestCleanupDropsDatabase(t *testing.T) {
	t.Parallel()
	var names []string
	t.Run("uses", func(t *testing.T) {
		names = append(names, New(t).Name, NewEmpty(t).Name)
	})
	admin := New(t)
	for _, name := range names {
		if exists(t, admin, "SELECT count(*) > 0 FROM pg_database WHERE datname = $1", name) {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

// TestParallelNew clones the template from many tests at once.
func TestParallelNew(t *testing.T) {
	for i := range 12 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			db := New(t)
			if !exists(t, db, "SELECT to_regclass('worker') IS NOT NULL") {
				t.Errorf("worker table missing")
			}
		})
	}
}

func TestNewServer(t *testing.T) {
	t.Parallel()
	var dataDir string
	t.Run("fault test", func(t *testing.T) {
		srv := NewServer(t, embeddedpg.Options{ListenAddress: "127.0.0.1"})
		dataDir = srv.DataDir()
		if srv.Port() == 5432 || !strings.Contains(srv.ConnString("attune"), "@127.0.0.1:") {
			t.Errorf("TCP server: port %d, URL %s", srv.Port(), srv.ConnString("attune"))
		}
		ctx := context.Background()
		ping := func() error {
			conn, err := pgx.Connect(ctx, srv.ConnString("attune"))
			if err != nil {
				return err
			}
			return conn.Close(ctx)
		}
		if err := ping(); err != nil {
			t.Fatalf("connect: %v", err)
		}
		if err := srv.Kill(); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if ping() == nil {
			t.Fatalf("connected after Kill")
		}
		if err := srv.Restart(ctx); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if err := ping(); err != nil {
			t.Fatalf("connect after Restart: %v", err)
		}
	})
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s of a dedicated server still there after its test (%v)", dataDir, err)
	}
	if st, err := embeddedpg.StatusOf(embeddedpg.Options{DataDir: dataDir}); err != nil || st.Running {
		t.Errorf("dedicated server still running after its test: %+v %v", st, err)
	}
}
