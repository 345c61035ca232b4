package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/migrations"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// migrationCount is the number of embedded migrations.
func migrationCount(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	return len(files)
}

// latestVersion is what `migrate version` prints when fully migrated: the
// highest version, not the number of files (versions have gaps: ranges are
// reserved per line of work).
func latestVersion(t *testing.T) string {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v %v", files, err)
	}
	n := 0
	for _, f := range files {
		v, err := strconv.Atoi(strings.SplitN(f, "_", 2)[0])
		if err != nil {
			t.Fatalf("migration %s: no version number", f)
		}
		n = max(n, v)
	}
	return fmt.Sprintf("version %d of %d", n, n)
}

func TestVersion(t *testing.T) {
	res := run(t, env(t), "version", "-o", "json")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(res.Stdout), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, res.Stdout)
	}
	if v["version"] == "" || !strings.HasPrefix(v["go_version"], "go") {
		t.Errorf("version = %v", v)
	}
	// version works even when the configuration is broken.
	if res := run(t, env(t, "ATTUNE__LOG__FORMAT=xml"), "version"); res.Code != 0 || !strings.Contains(res.Stdout, "attunectl ") {
		t.Errorf("version with a broken config: exit %d %s %s", res.Code, res.Stdout, res.Stderr)
	}
}

func TestBadInputExitsTwo(t *testing.T) {
	dir := t.TempDir()
	malformed := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(malformed, []byte("database:\n  url: x\n schema: y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"unknown flag", nil, []string{"migrate", "status", "--frobnicate"}, []string{"unknown flag: --frobnicate", "attunectl migrate status --help"}},
		{"unknown command", nil, []string{"frobnicate"}, []string{"unknown command"}},
		{"malformed config", nil, []string{"-c", malformed, "config", "view"}, []string{"bad.yaml", "line 2"}},
		{"missing config", nil, []string{"-c", filepath.Join(dir, "nope.yaml"), "config", "view"}, []string{"nope.yaml"}},
		{"heartbeat interval 0", []string{"ATTUNE__SENSOR__HEARTBEAT_INTERVAL=0"}, []string{"config", "view"}, []string{"sensor.heartbeat_interval: must be greater than 0"}},
		{"bad schema", nil, []string{"--schema", "Robert'); DROP TABLE worker;--", "config", "view"}, []string{"database.schema"}},
		{"unknown log format", nil, []string{"--log-format", "xml", "config", "view"}, []string{"log.format", "text or json"}},
		{"unknown output format", nil, []string{"config", "view", "-o", "csv"}, []string{`unknown output format "csv"`, "yaml, json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, env(t, tt.env...), tt.args...)
			if res.Code != 2 {
				t.Errorf("exit %d, want 2\nstderr: %s", res.Code, res.Stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, res.Stderr)
				}
			}
			if strings.Count(res.Stderr, "Error:") != 1 {
				t.Errorf("the error should be printed exactly once:\n%s", res.Stderr)
			}
		})
	}
}

func TestConfigViewRedactsPassword(t *testing.T) {
	res := run(t, env(t, "ATTUNE__DATABASE__URL=postgres://attune:hunter2@db.example:5432/attune?password=hunter2"), "config", "view")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stdout+res.Stderr, "hunter2") {
		t.Fatalf("password shown:\n%s%s", res.Stdout, res.Stderr)
	}
	for _, w := range []string{"postgres://attune:xxxxx@db.example:5432/attune", "heartbeat_interval: 30s", "schema: attune", "max_concurrent_sensors: 10"} {
		if !strings.Contains(res.Stdout, w) {
			t.Errorf("config view lacks %q:\n%s", w, res.Stdout)
		}
	}
	if !strings.Contains(res.Stderr, "ATTUNE__DATABASE__URL") {
		t.Errorf("config view should list the environment variables used on stderr:\n%s", res.Stderr)
	}
}

// TestConcurrentMigrateUp runs four `migrate up` processes at once against
// one empty database: all succeed and each migration is applied once.
func TestConcurrentMigrateUp(t *testing.T) {
	db := dbtest.NewEmpty(t)
	e := dbEnv(t, db)
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(t, e, "migrate", "up")
		}()
	}
	wg.Wait()
	applied := 0
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("process %d: exit %d\n%s", i, r.Code, r.Stderr)
		}
		applied += strings.Count(r.Stdout, "applied ")
	}
	n := migrationCount(t)
	if applied != n {
		t.Errorf("migrations applied %d times in all, want %d (once each)", applied, n)
	}
	var rows, distinct int
	err := db.Pool.QueryRow(context.Background(),
		"SELECT count(*), count(DISTINCT version_id) FROM attune.goose_db_version WHERE version_id > 0").Scan(&rows, &distinct)
	if err != nil || rows != n || distinct != n {
		t.Errorf("goose_db_version: %d rows, %d distinct (%v), want %d and %d", rows, distinct, err, n, n)
	}
}

func TestMigrateCommands(t *testing.T) {
	db := dbtest.NewEmpty(t)
	e := dbEnv(t, db)
	if res := run(t, e, "migrate", "down"); res.Code != 2 || !strings.Contains(res.Stderr, "nothing to roll back") {
		t.Errorf("down at version 0: exit %d %s", res.Code, res.Stderr)
	}
	if res := run(t, e, "migrate", "up", "--to", "2"); res.Code != 0 || !strings.Contains(res.Stdout, "at version 2") {
		t.Fatalf("up --to 2: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	res := run(t, e, "migrate", "status", "-o", "json")
	var st []struct {
		Version int64 `json:"version"`
		Applied bool  `json:"applied"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil || len(st) != migrationCount(t) || !st[1].Applied || st[2].Applied {
		t.Fatalf("status -o json: %v %+v\n%s", err, st, res.Stdout)
	}
	if res := run(t, e, "migrate", "up"); res.Code != 0 {
		t.Fatalf("up: %s", res.Stderr)
	}
	if res := run(t, e, "migrate", "version"); !strings.Contains(res.Stdout, latestVersion(t)) {
		t.Errorf("version: %s", res.Stdout)
	}
	if res := run(t, e, "migrate", "down", "--to", "-1"); res.Code != 2 || !strings.Contains(res.Stderr, "below version 0") {
		t.Errorf("down --to -1: exit %d %s", res.Code, res.Stderr)
	}
	if res := run(t, e, "migrate", "down", "--to", "0"); res.Code != 0 || !strings.Contains(res.Stdout, "at version 0") {
		t.Errorf("down --to 0: exit %d %s %s", res.Code, res.Stdout, res.Stderr)
	}
	// A command that needs the tables says to migrate.
	if res := run(t, e, "worker", "list"); res.Code == 0 || !strings.Contains(res.Stderr, "attunectl migrate up") {
		t.Errorf("worker list on an unmigrated schema: exit %d %s", res.Code, res.Stderr)
	}
}

// passwordServer is a dedicated server that requires a password for the
// role "secure" (scram) while the harness's own role stays trusted.
func passwordServer(t *testing.T) (srv *embeddedpg.Server, url func(password string) string) {
	t.Helper()
	srv = dbtest.NewServer(t, embeddedpg.Options{})
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, srv.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, q := range []string{
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE secure LOGIN PASSWORD 'hunter2-correct'",
		"CREATE DATABASE secure OWNER secure",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	hba := filepath.Join(srv.DataDir(), "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, append([]byte("local all secure scram-sha-256\n"), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	return srv, func(pw string) string {
		return fmt.Sprintf("postgres://secure:%s@/secure?host=%s&port=%d&sslmode=disable", pw, srv.SocketDir(), srv.Port())
	}
}

// TestNoPasswordInAnyError runs every error path that sees a database URL
// and greps all output for the password.
func TestNoPasswordInAnyError(t *testing.T) {
	_, url := passwordServer(t)
	const pw = "hunter2-wrong"
	cases := []struct {
		name string
		url  string
		args []string
		want string
	}{
		{"wrong password", url(pw), []string{"migrate", "status"}, "authentication failed"},
		{"wrong password json logs", url(pw), []string{"--log-format", "json", "--log-level", "debug", "worker", "list"}, "authentication failed"},
		{"unparsable URL", "postgres://secure:" + pw + "@[::1/attune", []string{"migrate", "up"}, "parsing database URL"},
		{"unreachable", "postgres://secure:" + pw + "@/secure?host=/tmp/attunectl-none&port=5999", []string{"runtime", "list"}, "is the server running"},
		{"dsn form", "host=/tmp/attunectl-none port=5999 user=secure password=" + pw + " dbname=x", []string{"worker", "stale"}, "connecting to database"},
		{"config view", url(pw), []string{"config", "view", "-o", "json"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, env(t, "ATTUNE__DATABASE__URL="+c.url, "ATTUNE__DATABASE__CONNECT_TIMEOUT=3"), c.args...)
			out := res.Stdout + res.Stderr
			if strings.Contains(out, pw) {
				t.Fatalf("password in output:\n%s", out)
			}
			if c.want != "" && (res.Code == 0 || !strings.Contains(out, c.want)) {
				t.Errorf("exit %d, want an error containing %q:\n%s", res.Code, c.want, out)
			}
		})
	}
	// And the right password works.
	res := run(t, env(t, "ATTUNE__DATABASE__URL="+url("hunter2-correct")), "migrate", "up")
	if res.Code != 0 {
		t.Fatalf("right password: exit %d %s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stdout+res.Stderr, "hunter2-correct") {
		t.Errorf("password in output:\n%s%s", res.Stdout, res.Stderr)
	}
}

// TestEmbeddedDefault uses the embedded database with no URL configured:
// the first command starts and migrates it, the next reuses it, and
// `embedded stop` stops it.
func TestEmbeddedDefault(t *testing.T) {
	e := embeddedEnv(t)

	res := run(t, e, "embedded", "status")
	if res.Code != 0 || !strings.Contains(res.Stdout, "not initialized") {
		t.Fatalf("status before first use: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	res = run(t, e, "runtime", "list", "-o", "json")
	if res.Code != 0 {
		t.Fatalf("first use: exit %d\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "started the embedded PostgreSQL and created its schema") || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 || !strings.Contains(res.Stdout, "core.sensor.python") {
		t.Fatalf("first use should say, in one line, that it started the embedded database, and see the migrated runtimes:\n%s\n%s", res.Stderr, res.Stdout)
	}
	// Later commands find it running and say nothing of it.
	if res := run(t, e, "runtime", "list", "-o", "name"); res.Code != 0 || res.Stderr != "" {
		t.Fatalf("second use: exit %d, stderr %q", res.Code, res.Stderr)
	}
	var st struct {
		Running bool `json:"running"`
		PID     int  `json:"pid"`
	}
	res = run(t, e, "embedded", "status", "-o", "json")
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil || !st.Running || st.PID == 0 {
		t.Fatalf("status after first use: %v %+v\n%s", err, st, res.Stdout)
	}
	first := st.PID
	if res := run(t, e, "migrate", "version"); res.Code != 0 || !strings.Contains(res.Stdout, latestVersion(t)) {
		t.Fatalf("second use: exit %d %s %s", res.Code, res.Stdout, res.Stderr)
	}
	res = run(t, e, "embedded", "status", "-o", "json")
	_ = json.Unmarshal([]byte(res.Stdout), &st)
	if st.PID != first {
		t.Errorf("second use started a new server: pid %d, was %d", st.PID, first)
	}
	// status says how to connect: user, database, password file, psql.
	res = run(t, e, "embedded", "status")
	for _, want := range []string{"user:       attune", "database:   attune", "attunectl.pgpass", "connect:    ", "psql"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("status while running: no %q\n%s", want, res.Stdout)
		}
	}
	// An attunectl session connected (as a sensor worker would be): stop
	// refuses, exit 2, names it and changes nothing; --force stops.
	var where struct {
		SocketDir string `json:"socket_dir"`
		Port      int    `json:"port"`
	}
	res = run(t, e, "embedded", "status", "-o", "json")
	if err := json.Unmarshal([]byte(res.Stdout), &where); err != nil || where.SocketDir == "" {
		t.Fatalf("status -o json: %v\n%s", err, res.Stdout)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://attune@/attune?host=%s&port=%d&sslmode=disable&application_name=attunectl", where.SocketDir, where.Port))
	if err != nil {
		t.Fatalf("connecting as the invoking user over the socket: %v", err)
	}
	defer conn.Close(ctx)
	var session int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&session); err != nil {
		t.Fatal(err)
	}
	res = run(t, e, "embedded", "stop")
	if res.Code != 2 || !strings.Contains(res.Stderr, "--force") || !strings.Contains(res.Stderr, fmt.Sprint(session)) || !strings.Contains(res.Stderr, "nothing was changed") {
		t.Errorf("stop with a client connected: exit %d, want 2 naming pid %d and --force\n%s%s", res.Code, session, res.Stdout, res.Stderr)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Errorf("the refused stop cut the session off: %v", err)
	}
	if res := run(t, e, "embedded", "stop", "--force"); res.Code != 0 || !strings.Contains(res.Stdout, "stopped") {
		t.Fatalf("stop --force: exit %d %s %s", res.Code, res.Stdout, res.Stderr)
	}
	waitFor(t, 10*time.Second, "the server to be gone", func() bool {
		res := run(t, e, "embedded", "status", "-o", "json")
		_ = json.Unmarshal([]byte(res.Stdout), &st)
		return !st.Running
	})
}

// TestEmbeddedMigratesOnlyWhenCreated: the embedded default migrates when
// its database is created and by `migrate up`; after `migrate down` a
// read-only command says "not migrated" instead of migrating again, and a
// mistyped --schema is not created.
func TestEmbeddedMigratesOnlyWhenCreated(t *testing.T) {
	t.Parallel()
	e := embeddedEnv(t)
	if res := run(t, e, "worker", "list"); res.Code != 0 {
		t.Fatalf("first use: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := run(t, e, "migrate", "down", "--to", "0"); res.Code != 0 {
		t.Fatalf("migrate down --to 0: exit %d\n%s", res.Code, res.Stderr)
	}
	res := run(t, e, "worker", "list")
	if res.Code == 0 || !strings.Contains(res.Stderr, "not migrated") {
		t.Errorf("worker list after migrate down: exit %d, want an error saying not migrated\n%s", res.Code, res.Stderr)
	}
	if res := run(t, e, "migrate", "version"); !strings.Contains(res.Stdout, "version 0 of") {
		t.Errorf("worker list after migrate down migrated the schema again: %s%s", res.Stdout, res.Stderr)
	}
	res = run(t, e, "--schema", "atune", "worker", "list")
	if res.Code == 0 || !strings.Contains(res.Stderr, `schema "atune" is not migrated`) {
		t.Errorf("worker list with a mistyped schema: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := run(t, e, "--schema", "atune", "migrate", "status"); strings.Contains(res.Stdout, "applied") {
		t.Errorf("a mistyped schema was migrated:\n%s", res.Stdout)
	}
	if res := run(t, e, "migrate", "up"); res.Code != 0 {
		t.Fatalf("migrate up: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := run(t, e, "worker", "list"); res.Code != 0 {
		t.Errorf("worker list after migrate up: exit %d\n%s", res.Code, res.Stderr)
	}
}

// TestBadInputStartsNothing: flags and arguments are checked before any
// connection, so a typo never starts (or creates) the embedded database;
// the notice of a first start is one line, and --log-level warn quiets it.
func TestBadInputStartsNothing(t *testing.T) {
	e := embeddedEnv(t)
	var dataDir string
	for _, kv := range e {
		if v, ok := strings.CutPrefix(kv, "ATTUNE__EMBEDDED__DATA_DIR="); ok {
			dataDir = v
		}
	}
	for _, args := range [][]string{
		{"worker", "list", "--role", "sensr"},
		{"worker", "list", "--status", "actve"},
		{"worker", "stale", "--role", "x"},
		{"worker", "prune", "--role", "x", "--yes"},
		{"worker", "list", "--sort-by", "age"},
		{"worker", "cordon"},
		{"sensor", "list", "-o", "csv"},
		{"sensor", "add"},
		{"sensor", "add", "--example-dir", "/tmp"},
		{"event", "list", "--since", "yesterday"},
		{"runtime", "add", "--ref", "Bad Ref", "--name", "x", "--always-available"},
		{"migrate", "down", "--to", "abc"},
		{"sensor", "run", "--heartbeat-interval", "0"},
	} {
		res := run(t, e, args...)
		if res.Code != 2 || strings.Count(res.Stderr, "Error:") != 1 {
			t.Errorf("attunectl %s: exit %d, want 2 with one error\n%s", strings.Join(args, " "), res.Code, res.Stderr)
		}
		if _, err := os.Stat(dataDir); err == nil {
			t.Fatalf("attunectl %s created the embedded database at %s", strings.Join(args, " "), dataDir)
		}
	}
	if res := run(t, e, "--log-level", "warn", "worker", "list"); res.Code != 0 || res.Stderr != "No workers found.\n" {
		t.Errorf("--log-level warn on first use: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// TestRunAsTheEmbeddedServersUserIsRefused: commands from the database never
// run as the user the embedded PostgreSQL runs as (they could rewrite
// pg_hba.conf and become its superuser).
func TestRunAsTheEmbeddedServersUserIsRefused(t *testing.T) {
	testsupport.RequireRoot(t, "only root runs the embedded server and the commands as other users")
	e := embeddedEnv(t)
	if res := run(t, e, "embedded", "start"); res.Code != 0 {
		t.Fatalf("embedded start: exit %d\n%s", res.Code, res.Stderr)
	}
	// The server runs as postgres, or as nobody where no postgres user exists.
	owner := "postgres"
	if _, err := user.Lookup(owner); err != nil {
		owner = "nobody"
	}
	for _, args := range [][]string{
		{"runtime", "verify", "--run-as", owner},
		{"sensor", "run", "--once", "--run-as", owner},
	} {
		res := run(t, e, args...)
		if res.Code != 2 || !strings.Contains(res.Stderr, "the user the embedded PostgreSQL runs as") {
			t.Errorf("%v: exit %d\n%s", args, res.Code, res.Stderr)
		}
	}
}
