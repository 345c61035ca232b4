// Package database opens attunectl's connection pool to PostgreSQL and finds
// out, once at connect time, which of the tables and columns attunectl uses
// exist: attunectl also runs against databases that Attune itself created,
// where the runtime table may have no runtime_type column and the worker
// table may have columns attunectl does not know.
package database

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AppName is the application_name of every attunectl connection, so that
// pg_stat_activity shows who holds a lock.
const AppName = "attunectl"

// Options configure Open.
type Options struct {
	URL              string
	Schema           string
	ConnectTimeout   time.Duration
	StatementTimeout time.Duration // 0: the server's default
	MaxConns         int32
	AppName          string // default AppName
	// Pooler says whether a transaction pooler (PgBouncer with
	// pool_mode = transaction) stands between attunectl and the server:
	// PoolerAuto (the default) finds out at connect time.
	Pooler PoolerMode
	// MigrationLockTimeout bounds how long `migrate` waits for another
	// `migrate` holding the migration lock; 0: DefaultMigrationLockTimeout.
	MigrationLockTimeout time.Duration
	// Logger, when set, hears what the operator should know while it
	// happens: a migration waiting for a lock held by someone else.
	Logger *slog.Logger
}

// PoolerMode is how Open treats a connection pooler.
type PoolerMode string

const (
	// PoolerAuto connects as to a server and switches to PoolerTransaction
	// when the other end refuses attunectl's startup parameters
	// ("unsupported startup parameter", a stock PgBouncer) or accepts them
	// and then ignores them (PgBouncer with ignore_startup_parameters).
	PoolerAuto PoolerMode = ""
	// PoolerNone: a direct connection; session settings are startup parameters.
	PoolerNone PoolerMode = "none"
	// PoolerTransaction: every transaction sets search_path, statement_timeout
	// and jit itself, and statements are never prepared on the server.
	PoolerTransaction PoolerMode = "transaction"
)

// DB is an open pool plus what attunectl learned about the schema.
type DB struct {
	Pool    *pgxpool.Pool
	Schema  string
	Runtime RuntimeColumns
	Worker  WorkerColumns
	// Facts: where the tables are, their columns and unique columns (schemacheck.go).
	Facts SchemaFacts
	// Target describes the server without credentials, e.g. "db.example:5432/attune".
	Target string
	// Pooler is true when Open found (or was told of) a transaction pooler:
	// settings travel with every transaction, nothing with the session.
	Pooler bool
	// MigrationLockTimeout is Options.MigrationLockTimeout with its default.
	MigrationLockTimeout time.Duration
	// Log is Options.Logger; nil: silent.
	Log *slog.Logger
}

// RuntimeColumns says which optional columns the runtime table has.
type RuntimeColumns struct {
	Exists       bool
	HasType      bool // runtime_type: the runtime_type era; absent on unified Attune databases
	HasRetiredAt bool
}

// WorkerColumns says which columns the worker table has.
type WorkerColumns struct {
	Exists  bool
	HasRole bool
	Columns map[string]bool
}

// PoolConfig parses the URL and applies search_path, application_name and
// the timeouts: as startup parameters, or per transaction with
// Options.Pooler = PoolerTransaction. Errors are redacted and say what to do.
func PoolConfig(opts Options) (*pgxpool.Config, error) {
	if opts.Schema == "" {
		opts.Schema = "attune"
	}
	if opts.AppName == "" {
		opts.AppName = AppName
	}
	RememberSecrets(opts.URL)
	if err := checkUserinfo(opts.URL); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w (expected postgres://user:password@host:5432/dbname or host=… dbname=…; check --database-url or ATTUNE__DATABASE__URL)", RedactError(err))
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["search_path"] = pgx.Identifier{opts.Schema}.Sanitize() + ", public"
	rp["application_name"] = opts.AppName
	// attunectl's statements are short lookups and updates; JIT compiling
	// the per-worker staleness test cost ~50 ms on a million rows and never
	// paid back.
	rp["jit"] = "off"
	if opts.StatementTimeout > 0 {
		rp["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	}
	if opts.Pooler == PoolerTransaction {
		usePooler(cfg, opts.Schema, opts)
	}
	if opts.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	// Idle connections are not kept long: attunectl's pools are small and a
	// sensor worker heartbeats at most every few seconds.
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second
	return cfg, nil
}

// Open connects, pings and introspects. The pool is closed again on error.
//
// With Options.Pooler unset it finds out whether a transaction pooler is in
// the way at the cost of one small query on a direct connection: the first
// connection goes out with the usual startup parameters; a pooler that
// refuses them ("unsupported startup parameter") or drops them (search_path
// is not what was asked for) makes Open reconnect in pooler mode (see
// pooler.go). A direct connection then runs exactly as before: startup
// parameters, pgx's statement cache, nothing added to its statements.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Schema == "" {
		opts.Schema = "attune"
	}
	db, err := open(ctx, opts)
	if opts.Pooler != PoolerAuto {
		return db, err
	}
	switch {
	case err != nil && isUnsupportedStartupParameter(err):
	case err == nil && !db.sessionSettingsKept(ctx):
		db.Close()
	default:
		return db, err
	}
	opts.Pooler = PoolerTransaction
	return open(ctx, opts)
}

func open(ctx context.Context, opts Options) (*DB, error) {
	cfg, err := PoolConfig(opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, explainConnect(err, cfg.ConnConfig.ConnectTimeout)
	}
	db := &DB{Pool: pool, Schema: opts.Schema, Target: target(cfg), Pooler: opts.Pooler == PoolerTransaction,
		MigrationLockTimeout: opts.MigrationLockTimeout, Log: opts.Logger}
	if db.MigrationLockTimeout <= 0 {
		db.MigrationLockTimeout = DefaultMigrationLockTimeout
	}
	pctx := ctx
	if t := cfg.ConnConfig.ConnectTimeout; t > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, t+time.Second)
		defer cancel()
	}
	if err := db.Introspect(pctx); err != nil {
		pool.Close()
		if opts.Pooler == PoolerAuto && isUnsupportedStartupParameter(err) {
			return nil, err // Open retries in pooler mode
		}
		return nil, explainConnect(err, cfg.ConnConfig.ConnectTimeout)
	}
	return db, nil
}

// sessionSettingsKept reports whether the search_path sent as a startup
// parameter is in effect; a pooler told to ignore startup parameters accepts
// the connection and drops them. An error counts as kept: the statements
// that follow will say what is wrong.
func (db *DB) sessionSettingsKept(ctx context.Context) bool {
	var sp string
	if err := db.Pool.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&sp); err != nil {
		return true
	}
	return sp == pgx.Identifier{db.Schema}.Sanitize()+", public"
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Introspect (re)reads which tables and columns exist where search_path
// resolves them (db.Runtime, db.Worker and db.Facts, from one statement).
// Open calls it; `migrate` calls it again after changing the schema.
func (db *DB) Introspect(ctx context.Context) error {
	return db.introspectFacts(ctx)
}

// RequireSchema fails with what to do when the tables attunectl works on are
// missing: the schema has not been migrated, or --schema names the wrong one.
func (db *DB) RequireSchema() error {
	if err := db.requireHome(); err != nil {
		return err
	}
	var missing []string
	if !db.Runtime.Exists {
		missing = append(missing, "runtime table")
	}
	if !db.Worker.Exists {
		missing = append(missing, "worker table")
	} else if !db.Worker.HasRole {
		missing = append(missing, "worker.worker_role column")
	}
	if len(missing) == 0 {
		return db.Require(baseRequirements...)
	}
	return &SchemaError{Schema: db.Schema, Missing: missing}
}

// SchemaError says which of attunectl's tables or columns are missing.
type SchemaError struct {
	Schema  string
	Missing []string
}

func (e *SchemaError) Error() string {
	what := e.Missing[0]
	for i, m := range e.Missing[1:] {
		if i == len(e.Missing)-2 {
			what += " and " + m
		} else {
			what += ", " + m
		}
	}
	return fmt.Sprintf("schema %q is not migrated: %s not found (run `attunectl migrate up`, or pass --schema to name the schema that holds them)", e.Schema, what)
}

func target(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	host := c.Host
	if len(host) > 0 && host[0] == '/' {
		host = "socket " + host
	} else {
		host = host + ":" + strconv.Itoa(int(c.Port))
	}
	if n := len(c.Fallbacks); n > 0 {
		host += fmt.Sprintf(" (+%d more hosts)", n)
	}
	return host + "/" + c.Database
}
