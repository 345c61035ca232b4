package database_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func open(t *testing.T, url, schema string) *database.DB {
	t.Helper()
	db, err := database.Open(context.Background(), database.Options{URL: url, Schema: schema, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestOpenSetsSearchPathAndApplicationName(t *testing.T) {
	tdb := dbtest.New(t)
	db := open(t, tdb.URL, "attune")
	var searchPath, app string
	if err := db.Pool.QueryRow(context.Background(), "SELECT current_setting('search_path'), current_setting('application_name')").Scan(&searchPath, &app); err != nil {
		t.Fatal(err)
	}
	if searchPath != `"attune", public` || app != "attunectl" {
		t.Errorf("search_path=%q application_name=%q", searchPath, app)
	}
	if err := db.RequireSchema(); err != nil {
		t.Errorf("migrated database: %v", err)
	}
	if !db.Runtime.HasType || !db.Worker.HasRole {
		t.Errorf("introspection: %+v %+v", db.Runtime, db.Worker)
	}
}

func TestRequireSchemaOnUnmigratedDatabase(t *testing.T) {
	tdb := dbtest.NewEmpty(t)
	db := open(t, tdb.URL, "attune")
	err := db.RequireSchema()
	var se *database.SchemaError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "run `attunectl migrate up`") {
		t.Fatalf("want a SchemaError saying to migrate, got %v", err)
	}
}

// schemaSnapshot describes every column, index, type and constraint of a
// schema, so that two states can be compared.
func schemaSnapshot(t *testing.T, db *database.DB) string {
	t.Helper()
	ctx := context.Background()
	var out []string
	queries := []string{
		`SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || udt_name || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
		 FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'goose_db_version' ORDER BY 1`,
		`SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename <> 'goose_db_version' ORDER BY 1`,
		`SELECT t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
		 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
		 WHERE n.nspname = $1 GROUP BY t.typname ORDER BY 1`,
		`SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		 FROM pg_constraint WHERE connamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)
		 AND conrelid::regclass::text NOT LIKE '%goose%' ORDER BY 1`,
		`SELECT relname || ' ' || array_to_string(reloptions, ',') FROM pg_class
		 WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND reloptions IS NOT NULL ORDER BY 1`,
	}
	for _, q := range queries {
		rows, err := db.Pool.Query(ctx, q, db.Schema)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lines...)
	}
	return strings.Join(out, "\n")
}

func TestMigrationsUpDownUp(t *testing.T) {
	ctx := context.Background()
	tdb := dbtest.NewEmpty(t)
	db := open(t, tdb.URL, "attune")
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	first := schemaSnapshot(t, db)
	if !strings.Contains(first, "idx_worker_role_status") || !strings.Contains(first, "worker.worker_role") || !strings.Contains(first, "worker fillfactor=70") {
		t.Fatalf("schema after up lacks the worker_role migration:\n%s", first)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM runtime WHERE runtime_type = 'sensor'").Scan(&n); err != nil || n != 5 {
		t.Fatalf("seeded sensor runtimes: %d %v", n, err)
	}

	if _, err := m.DownTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if empty := schemaSnapshot(t, db); empty != "" {
		t.Fatalf("schema after down to 0 is not empty:\n%s", empty)
	}
	if _, err := m.Down(ctx); err == nil || !strings.Contains(err.Error(), "version 0") {
		t.Fatalf("down past 0: want a clear error, got %v", err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if again := schemaSnapshot(t, db); again != first {
		t.Fatalf("schema after up/down/up differs:\nfirst:\n%s\nagain:\n%s", first, again)
	}
}

// attuneSchema is how Attune itself creates its tables (the shape of an
// existing production database), with columns attunectl does not know.
const attuneSchema = `
CREATE SCHEMA attune;
SET search_path = attune;
CREATE TYPE runtime_type_enum AS ENUM ('action', 'sensor');
CREATE TYPE worker_type_enum AS ENUM ('local', 'remote', 'container');
CREATE TYPE worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');
CREATE TABLE runtime (
	id bigserial PRIMARY KEY, ref text NOT NULL UNIQUE, pack bigint, pack_ref text, name text NOT NULL,
	description text, aliases text[] NOT NULL DEFAULT '{}', runtime_type runtime_type_enum NOT NULL,
	distributions jsonb NOT NULL DEFAULT '{}', installation jsonb, execution_config jsonb NOT NULL DEFAULT '{}',
	created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE worker (
	id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, worker_type worker_type_enum NOT NULL,
	runtime bigint REFERENCES runtime(id) ON DELETE SET NULL, host text, port integer,
	status worker_status_enum DEFAULT 'active', capabilities jsonb, meta jsonb, last_heartbeat timestamptz,
	cordoned boolean NOT NULL DEFAULT false, cordon_reason text,
	created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now());
INSERT INTO runtime (ref, pack_ref, name, runtime_type, distributions) VALUES
	('core.action.python', 'core', 'Python', 'action', '{"verification": {"commands": [{"binary": "python3", "args": ["--version"]}]}}'),
	('core.sensor.python', 'core', 'Python', 'sensor', '{"custom": 1}');
INSERT INTO worker (name, worker_type, host, status, capabilities, last_heartbeat, cordoned) VALUES
	('worker-01', 'local', 'host-a', 'active', '{"runtimes": ["python"]}', now(), true),
	('worker-02', 'remote', 'host-b', 'inactive', NULL, NULL, false);
`

func TestMigrationsAdoptAttuneTables(t *testing.T) {
	ctx := context.Background()
	tdb := dbtest.NewEmpty(t)
	if _, err := tdb.Pool.Exec(ctx, attuneSchema); err != nil {
		t.Fatal(err)
	}
	db := open(t, tdb.URL, "attune")
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("migrating an Attune database: %v", err)
	}
	// Rows kept, existing workers became 'action', unknown columns intact.
	rows, err := db.Pool.Query(ctx, "SELECT name || ' ' || worker_role::text || ' ' || cordoned::text FROM worker ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	if want := "worker-01 action true,worker-02 action false"; strings.Join(got, ",") != want {
		t.Errorf("workers after migrate: %v, want %s", got, want)
	}
	// The pre-existing core.sensor.python row keeps its keys and, having no
	// verification metadata, gains the seed's (migration 00006); the other
	// four are added.
	var dist string
	if err := db.Pool.QueryRow(ctx, "SELECT distributions::text FROM runtime WHERE ref = 'core.sensor.python'").Scan(&dist); err != nil ||
		!strings.HasPrefix(dist, `{"custom": 1, "verification": {"commands": [{"args": ["--version"], "binary": "python3"`) {
		t.Errorf("existing runtime row: %s %v", dist, err)
	}
	var n int
	_ = db.Pool.QueryRow(ctx, "SELECT count(*) FROM runtime").Scan(&n)
	if n != 6 {
		t.Errorf("runtime rows = %d, want 6 (2 existing + 4 seeded)", n)
	}

	// Down to 0 drops only what attunectl created: Attune's tables and rows stay.
	if _, err := m.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM worker").Scan(&n); err != nil || n != 2 {
		t.Errorf("after down, worker rows = %d (%v), want 2", n, err)
	}
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM runtime").Scan(&n); err != nil || n != 2 {
		t.Errorf("after down, runtime rows = %d (%v), want the 2 Attune rows", n, err)
	}
	if err := db.Pool.QueryRow(ctx, "SELECT distributions::text FROM runtime WHERE ref = 'core.sensor.python'").Scan(&dist); err != nil || dist != `{"custom": 1}` {
		t.Errorf("after down, core.sensor.python = %s (%v), want it as Attune wrote it", dist, err)
	}
	// Up again on the adopted database works.
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

func TestMigrationsInAnotherSchema(t *testing.T) {
	ctx := context.Background()
	tdb := dbtest.NewEmpty(t)
	db := open(t, tdb.URL, "ops_registry")
	if err := database.MigrateUp(ctx, db); err != nil {
		t.Fatal(err)
	}
	// Every table the migrations make (the template's, in attune) lands in
	// ops_registry, and nothing in attune or public.
	tables := func(pool *pgxpool.Pool, schema string) string {
		t.Helper()
		var names string
		if err := pool.QueryRow(ctx, "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables WHERE schemaname = $1", schema).Scan(&names); err != nil {
			t.Fatal(err)
		}
		return names
	}
	want := tables(dbtest.New(t).Pool, "attune")
	if got := tables(tdb.Pool, "ops_registry"); got != want || !strings.Contains(got, "goose_db_version") || !strings.Contains(got, "worker") {
		t.Errorf("tables in ops_registry = %s, want the migrated set %s", got, want)
	}
	for _, other := range []string{"attune", "public"} {
		if got := tables(tdb.Pool, other); got != "" {
			t.Errorf("migrating into ops_registry made tables in %s: %s", other, got)
		}
	}
}

func TestMultiHostURLSkipsDeadHost(t *testing.T) {
	tdb := dbtest.New(t)
	srv := dbtest.Server(t)
	dead := filepath.Join(os.TempDir(), "attunectl-no-server-here")
	url := fmt.Sprintf("postgres://attune@/%s?host=%s,%s&port=%d,%d&target_session_attrs=read-write&sslmode=disable",
		tdb.Name, dead, srv.SocketDir(), srv.Port(), srv.Port())
	db := open(t, url, "attune")
	var one int
	if err := db.Pool.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query over multi-host URL: %v", err)
	}
}

func TestConnectErrorsSayWhatToDo(t *testing.T) {
	srv := dbtest.Server(t)
	tests := []struct {
		name string
		url  string
		want []string
	}{
		{"unparsable", "postgres://attune:hunter2@[::1/attune", []string{"parsing database URL", "--database-url"}},
		{"missing database", fmt.Sprintf("postgres://attune:hunter2@/no_such_db?host=%s&port=%d", srv.SocketDir(), srv.Port()),
			[]string{"no_such_db", "createdb"}},
		{"no server", "postgres://attune:hunter2@/attune?host=/tmp/attunectl-nothing-here&port=5999",
			[]string{"is the server running"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := database.Open(context.Background(), database.Options{URL: tt.url, ConnectTimeout: 3 * time.Second})
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

func TestConnectTimeoutOnSilentServer(t *testing.T) {
	// A listener that accepts and never answers: the connect must give up
	// within the timeout, not hang.
	l, addr := silentListener(t)
	defer l.Close()
	start := time.Now()
	_, err := database.Open(context.Background(), database.Options{
		URL:            "postgres://attune:hunter2@" + addr + "/attune?sslmode=disable",
		ConnectTimeout: time.Second,
	})
	if err == nil {
		t.Fatal("expected a timeout")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s, want about 1s", d)
	}
	if !strings.Contains(err.Error(), "no answer within 1s") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error = %q", err)
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"postgres://u:secret@h/db":                           "postgres://u:xxxxx@h/db",
		"postgresql://u:p%40ss@h1:5432,h2:5433/db?x=1":       "postgresql://u:xxxxx@h1:5432,h2:5433/db?x=1",
		"host=h user=u password=secret dbname=d":             "host=h user=u password=xxxxx dbname=d",
		"host=h password='se cret' dbname=d":                 "host=h password=xxxxx dbname=d",
		"postgres://h/db?user=u&password=secret&sslmode=off": "postgres://h/db?user=u&password=xxxxx&sslmode=off",
		"postgres://u@h/db":                                  "postgres://u@h/db",
		"failed to connect to `user=u database=d`: refused":  "failed to connect to `user=u database=d`: refused",
	}
	for in, want := range tests {
		if got := database.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExplainAddsWhatToDo(t *testing.T) {
	full := &pgconn.PgError{Code: "53300", Message: "sorry, too many clients already"}
	err := database.Explain(fmt.Errorf("heartbeat: %w", full))
	if !strings.Contains(err.Error(), "raise max_connections") || !errors.Is(err, full) || !database.IsTransient(err) {
		t.Errorf("53300: %v", err)
	}
	other := errors.New("something else")
	if database.Explain(other) != other {
		t.Errorf("an unknown error must be returned as it is")
	}
}
