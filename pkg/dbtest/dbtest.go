// Package dbtest gives tests a real PostgreSQL: one throwaway server per test
// binary (started lazily from the machine's PostgreSQL binaries through
// pkg/embeddedpg) and a fresh database per test, cloned from a template
// that is migrated once per binary.
//
// A package that uses it declares
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// so that the server is stopped and its files removed when the tests end.
// A test that cannot get a server fails with the reason; it never skips.
package dbtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/proc"
)

const (
	// Schema is the schema the template is migrated into, and the first
	// entry of every test pool's search_path.
	Schema = "attune"
	// templateDB is migrated once per test binary and cloned by New.
	templateDB = "attune_tmpl"
	// rootPrefix names the per-binary directories under /tmp; short, so the
	// socket path stays far below the 107-byte limit.
	rootPrefix = "apg-"
	// ownerFile in a root directory holds the pid of the test binary that
	// owns it, so a later binary can remove what a crashed one left.
	ownerFile = "dbtest.pid"
)

var (
	shared struct {
		once  sync.Once
		srv   *embeddedpg.Server
		root  string
		admin *pgxpool.Pool // to the "postgres" database, for CREATE/DROP DATABASE
		err   error
	}
	template struct {
		once sync.Once
		err  error
	}
	// seq numbers the test databases of this binary.
	seq atomic.Int64
)

// Main runs the tests, then stops the shared server and removes its files,
// runs the cleanups given, and exits with the tests' code. Call it from
// TestMain.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if err := stopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Server is this test binary's shared server: ephemeral (no fsync), a child
// of the test process (it dies with it), listening on a Unix socket under
// /tmp/apg-* that trusts every role (embeddedpg.Options.TrustSocket; the
// socket's directory is private to the server's user). It is started on first use; a failure to start fails the test.
func Server(t testing.TB) *embeddedpg.Server {
	t.Helper()
	shared.once.Do(func() { onLastingThread(startShared) })
	if shared.err != nil {
		t.Fatalf("dbtest: %v", shared.err)
	}
	return shared.srv
}

func startShared() {
	sweepStale()
	root, err := makeRoot()
	if err != nil {
		shared.err = err
		return
	}
	shared.root = root
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := embeddedpg.Start(ctx, embeddedpg.Options{
		DataDir:    filepath.Join(root, "data"),
		Ephemeral:  true,
		Foreground: true,
		// Its clients are not only this process's OS user: the shared
		// PgBouncer runs as the server's user (as root, postgres), and
		// tests log in as roles of their own (a role without CREATE).
		// Peer authentication mapped to the invoking user would refuse
		// both; the socket sits in the 0700 data directory, so only the
		// server's user and root reach it.
		TrustSocket: true,
		Settings: map[string]string{
			// Parallel tests each hold a small pool.
			"max_connections": "300",
		},
	})
	if err != nil {
		shared.err = fmt.Errorf("starting the test database server: %w", err)
		os.RemoveAll(root)
		return
	}
	shared.srv = srv
	cfg, err := pgxpool.ParseConfig(srv.ConnString("postgres"))
	if err == nil {
		cfg.MaxConns = 8
		shared.admin, err = pgxpool.NewWithConfig(ctx, cfg)
	}
	if err != nil {
		shared.err = fmt.Errorf("connecting to the test database server: %w", err)
	}
}

func stopShared() error {
	stopBouncer()
	if shared.admin != nil {
		shared.admin.Close()
	}
	if shared.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := shared.srv.Stop(ctx)
	if err != nil {
		err = fmt.Errorf("stopping the test database server: %w", err)
	}
	if rerr := os.RemoveAll(shared.root); rerr != nil && err == nil {
		err = fmt.Errorf("removing the test database server's files: %w", rerr)
	}
	return err
}

// makeRoot creates /tmp/apg-XXXX, traversable by the server's user (as root,
// the server runs as "postgres"), marked with this process's pid.
func makeRoot() (string, error) {
	root, err := os.MkdirTemp("/tmp", rootPrefix)
	if err != nil {
		return "", fmt.Errorf("creating a directory for the test database server: %w (is /tmp writable?)", err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		os.RemoveAll(root)
		return "", fmt.Errorf("making %s reachable for the server: %w", root, err)
	}
	if err := os.WriteFile(filepath.Join(root, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(root)
		return "", fmt.Errorf("marking %s: %w", root, err)
	}
	return root, nil
}

// sweepStale removes the directories of test binaries that died without
// running Main's cleanup (a panic, a timeout, a kill): each holds a cluster
// of some 40 MB. Only directories carrying the owner mark of a dead process
// are touched; a server still running in one is stopped first.
func sweepStale() {
	marks, _ := filepath.Glob(filepath.Join("/tmp", rootPrefix+"*", ownerFile))
	for _, mark := range marks {
		b, err := os.ReadFile(mark)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || proc.Alive(pid) {
			continue
		}
		root := filepath.Dir(mark)
		opts := embeddedpg.Options{DataDir: filepath.Join(root, "data")}
		if st, err := embeddedpg.StatusOf(opts); err == nil && st.Running {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = embeddedpg.StopDir(ctx, opts)
			cancel()
		}
		os.RemoveAll(root)
	}
}

// DB is a database of its own for one test.
type DB struct {
	Name string
	// URL connects to it as the superuser (no search_path in it: pass the
	// schema the way the code under test does).
	URL string
	// Pool is connected with search_path = attune, public.
	Pool   *pgxpool.Pool
	Schema string
	// PoolerURL reaches the same database through the shared PgBouncer
	// (NewPgBouncer, NewPgBouncerEmpty); empty otherwise.
	PoolerURL string
}

// New gives the test a fresh database with the migrations applied, cloned
// from a template migrated once per test binary. It is dropped when the test
// ends. Safe for parallel tests.
func New(t testing.TB) *DB {
	t.Helper()
	srv := Server(t)
	template.once.Do(func() { template.err = buildTemplate(srv) })
	if template.err != nil {
		t.Fatalf("dbtest: %v", template.err)
	}
	return create(t, srv, templateDB)
}

// NewEmpty gives the test a fresh database without the migrations (the
// schema does not exist yet), for migration tests. It is dropped when the
// test ends.
func NewEmpty(t testing.TB) *DB {
	t.Helper()
	return create(t, Server(t), "template1")
}

// buildTemplate creates and migrates the template database, then closes it
// to connections, so that cloning never meets "source database is being
// accessed by other users".
func buildTemplate(srv *embeddedpg.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := shared.admin.Exec(ctx, "CREATE DATABASE "+templateDB); err != nil {
		return fmt.Errorf("creating the template database: %w", err)
	}
	db, err := database.Open(ctx, database.Options{URL: srv.ConnString(templateDB), Schema: Schema})
	if err != nil {
		return fmt.Errorf("connecting to the template database: %w", err)
	}
	err = database.MigrateUp(ctx, db)
	db.Close()
	if err != nil {
		return fmt.Errorf("migrating the template database: %w", err)
	}
	if _, err := shared.admin.Exec(ctx, "ALTER DATABASE "+templateDB+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("closing the template database to connections: %w", err)
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// dbName is t_<test name>_<n>: readable in pg_stat_activity and unique in
// this server; PostgreSQL truncates names at 63 bytes, so the test name is
// cut to fit.
func dbName(t testing.TB) string {
	n := strconv.FormatInt(seq.Add(1), 10)
	name := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if max := 63 - len("t__") - len(n); len(name) > max {
		name = name[:max]
	}
	return "t_" + name + "_" + n
}

func create(t testing.TB, srv *embeddedpg.Server, from string) *DB {
	t.Helper()
	name := dbName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{from}.Sanitize()
	for attempt := 1; ; attempt++ {
		_, err := shared.admin.Exec(ctx, stmt)
		if err == nil {
			break
		}
		// 55006 object_in_use: "source database is being accessed by other
		// users"; brief, for template1 when another test connects to it.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" && attempt < 50 && ctx.Err() == nil {
			time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
			continue
		}
		t.Fatalf("dbtest: creating test database %s from %s: %v", name, from, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := shared.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: dropping test database %s: %v", name, err)
		}
	})

	url := srv.ConnString(name)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("dbtest: parsing %s: %v", url, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = Schema + ", public"
	cfg.ConnConfig.RuntimeParams["application_name"] = "dbtest"
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("dbtest: connecting to test database %s: %v", name, err)
	}
	// Registered after the drop, so it runs before it: close, then drop.
	t.Cleanup(pool.Close)
	return &DB{Name: name, URL: url, Pool: pool, Schema: Schema}
}

// NewServer starts a server of the test's own, for fault tests that restart
// or kill it, and stops it and removes its files when the test ends. Empty
// DataDir, SocketDir and Port are filled in (a fresh /tmp/apg-* directory;
// a free TCP port when ListenAddress is set, else 5432 on a private socket).
// The server is always Ephemeral and Foreground: it must not outlive the
// test binary. It has the database "attune", not migrated.
func NewServer(t testing.TB, opts embeddedpg.Options) *embeddedpg.Server {
	t.Helper()
	var root string
	if opts.DataDir == "" {
		var err error
		if root, err = makeRoot(); err != nil {
			t.Fatalf("dbtest: %v", err)
		}
		opts.DataDir = filepath.Join(root, "data")
	}
	if opts.Port == 0 && opts.ListenAddress != "" {
		port, err := freePort(opts.ListenAddress)
		if err != nil {
			t.Fatalf("dbtest: finding a free port: %v", err)
		}
		opts.Port = port
	}
	opts.Ephemeral, opts.Foreground = true, true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := embeddedpg.Start(ctx, opts)
	if err != nil {
		if root != "" {
			os.RemoveAll(root)
		}
		t.Fatalf("dbtest: starting a dedicated test server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("dbtest: stopping the dedicated test server: %v", err)
		}
		if root != "" {
			os.RemoveAll(root)
		}
	})
	return srv
}

// freePort asks the kernel for a free TCP port on the loopback address.
func freePort(listen string) (int, error) {
	host := "127.0.0.1"
	if listen == "::1" {
		host = "[::1]"
	}
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Admin is a pool on the shared server's "postgres" database as the
// superuser, for what spans databases (roles, pg_stat_activity).
func Admin(t testing.TB) *pgxpool.Pool {
	t.Helper()
	Server(t)
	return shared.admin
}

// Handle is the database as attunectl's packages take it: d's pool with
// what the schema has learned once (database.DB.Introspect), as Open does
// at connect time.
func (d *DB) Handle(t testing.TB) *database.DB {
	t.Helper()
	db := &database.DB{Pool: d.Pool, Schema: d.Schema}
	if err := db.Introspect(context.Background()); err != nil {
		t.Fatalf("dbtest: introspecting %s: %v", d.Name, err)
	}
	return db
}
