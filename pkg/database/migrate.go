package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/attune-automation/attunectl/migrations"
)

// Migrator applies the embedded migrations with goose's Provider and a
// transaction-scoped advisory lock (see migrationLocker), so that several
// `migrate up` at once — directly or through a transaction pooler — apply
// each migration exactly once and leave no lock behind. goose's version
// table lands in the configured schema, beside the tables it describes.
//
// Status and Version only read: they run no DDL, so they work for a role
// without CREATE and on a hot standby.
type Migrator struct {
	db       *DB
	sqlDB    *sql.DB
	provider *goose.Provider
}

// NewMigrator prepares the provider; it changes nothing in the database (the
// schema is created by Up when missing). Close releases it.
func NewMigrator(ctx context.Context, db *DB) (*Migrator, error) {
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	opts := []goose.ProviderOption{goose.WithSessionLocker(newMigrationLocker(db)), goose.WithDisableGlobalRegistry(true)}
	dialect := goose.DialectPostgres
	// The version table named with its schema: goose looks for an
	// unqualified one in current_schema(), which is another schema of
	// search_path (public) whenever the session does not see the
	// configured one, and would then create a second version table there
	// and apply every migration again. (A name that needs quoting keeps
	// goose's unqualified one: goose writes the name into its SQL as is.)
	if plainIdentifier.MatchString(db.Schema) {
		store, err := database.NewStore(database.DialectPostgres, db.Schema+".goose_db_version")
		if err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("loading migrations: %w", err)
		}
		opts = append(opts, goose.WithStore(store))
		dialect = "" // goose takes the dialect from the store
	}
	p, err := goose.NewProvider(dialect, sqlDB, migrations.FS, opts...)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	return &Migrator{db: db, sqlDB: sqlDB, provider: p}, nil
}

// plainIdentifier is a schema name PostgreSQL takes as it is, unquoted.
var plainIdentifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Close releases the *sql.DB wrapper; the pool stays open.
func (m *Migrator) Close() error { return m.sqlDB.Close() }

// ensureSchema creates the configured schema when it is missing.
func (m *Migrator) ensureSchema(ctx context.Context) error {
	var exists bool
	if err := m.db.Pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", m.db.Schema).Scan(&exists); err != nil {
		return fmt.Errorf("looking for schema %q: %w", m.db.Schema, RedactError(err))
	}
	if exists {
		return nil
	}
	_, err := m.db.Pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{m.db.Schema}.Sanitize())
	// IF NOT EXISTS is no guard against a concurrent CREATE SCHEMA (it
	// runs before the migration lock is taken, as several `migrate up` at
	// once do): the loser fails on pg_namespace's unique index (23505) or
	// with duplicate_schema (42P06). The schema then exists, as wanted.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P06") {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("creating schema %q: %w (ask for CREATE privilege on the database, or create the schema yourself)", m.db.Schema, RedactError(err))
	}
	return nil
}

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) ([]MigrationResult, error) {
	if err := m.preflight(ctx, math.MaxInt64); err != nil {
		return nil, err
	}
	if err := m.ensureSchema(ctx); err != nil {
		return nil, err
	}
	res, err := m.provider.Up(ctx)
	if ierr := m.db.Introspect(ctx); ierr != nil && err == nil {
		err = ierr
	}
	return migrationResults(res), wrapMigrate("applying migrations", err)
}

// UpTo applies pending migrations up to and including version.
func (m *Migrator) UpTo(ctx context.Context, version int64) ([]MigrationResult, error) {
	if err := m.preflight(ctx, version); err != nil {
		return nil, err
	}
	if err := m.ensureSchema(ctx); err != nil {
		return nil, err
	}
	res, err := m.provider.UpTo(ctx, version)
	_ = m.db.Introspect(ctx)
	return migrationResults(res), wrapMigrate("applying migrations", err)
}

// Down rolls back the latest applied migration.
func (m *Migrator) Down(ctx context.Context) (*MigrationResult, error) {
	// Nothing applied (or no schema at all): say so without letting goose
	// create its version table, which would land in another schema on
	// search_path when the configured one does not exist.
	if cur, _, err := m.Version(ctx); err != nil {
		return nil, err
	} else if cur == 0 {
		return nil, errors.New("nothing to roll back: the schema is at version 0")
	}
	res, err := m.provider.Down(ctx)
	_ = m.db.Introspect(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return nil, errors.New("nothing to roll back: the schema is at version 0")
	}
	return migrationResult(res), wrapMigrate("rolling back", err)
}

// DownTo rolls back every migration above version.
func (m *Migrator) DownTo(ctx context.Context, version int64) ([]MigrationResult, error) {
	if version < 0 {
		return nil, fmt.Errorf("cannot migrate down to version %d: the lowest version is 0", version)
	}
	if cur, _, err := m.Version(ctx); err != nil {
		return nil, err
	} else if cur <= version {
		return nil, nil // nothing above version is applied
	}
	res, err := m.provider.DownTo(ctx, version)
	_ = m.db.Introspect(ctx)
	return migrationResults(res), wrapMigrate("rolling back", err)
}

// Status lists every migration with whether and when it was applied. It
// reads goose's version table and changes nothing: on a schema never
// migrated (no version table) every migration is pending.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, error) {
	applied, err := m.applied(ctx)
	if err != nil {
		return nil, wrapMigrate("reading migration status", err)
	}
	var st []MigrationStatus
	for _, src := range m.provider.ListSources() {
		s := MigrationStatus{Version: src.Version, Name: path.Base(src.Path)}
		if at, ok := applied[src.Version]; ok {
			s.Applied, s.AppliedAt = true, at
		}
		st = append(st, s)
	}
	return st, nil
}

// Version returns the current database version and the latest available,
// reading only: 0 when the schema was never migrated.
func (m *Migrator) Version(ctx context.Context) (current, latest int64, err error) {
	applied, err := m.applied(ctx)
	if err != nil {
		return 0, 0, wrapMigrate("reading migration version", err)
	}
	for v := range applied {
		current = max(current, v)
	}
	for _, src := range m.provider.ListSources() {
		latest = max(latest, src.Version)
	}
	return current, latest, nil
}

// versionTable is goose's default table name.
const versionTable = "goose_db_version"

// applied reads which versions are applied and when, from goose's version
// table in the configured schema; none when the table does not exist. The
// latest row of a version decides (older goose releases recorded a rollback
// as a row with is_applied = false; newer ones delete the row).
func (m *Migrator) applied(ctx context.Context) (map[int64]time.Time, error) {
	tbl := pgx.Identifier{m.db.Schema, versionTable}.Sanitize()
	var exists bool
	if err := m.db.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", tbl).Scan(&exists); err != nil {
		return nil, err
	}
	out := map[int64]time.Time{}
	if !exists {
		return out, nil
	}
	rows, err := m.db.Pool.Query(ctx, `SELECT DISTINCT ON (version_id) version_id, is_applied, tstamp
		FROM `+tbl+` WHERE version_id > 0 ORDER BY version_id, id DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		var ok bool
		var at time.Time
		if err := rows.Scan(&v, &ok, &at); err != nil {
			return nil, err
		}
		if ok {
			out[v] = at
		}
	}
	return out, rows.Err()
}

// MigrateUp applies every pending migration: the short form used by the
// embedded default and the test harness.
func MigrateUp(ctx context.Context, db *DB) error {
	m, err := NewMigrator(ctx, db)
	if err != nil {
		return err
	}
	defer m.Close()
	_, err = m.Up(ctx)
	return err
}

func wrapMigrate(what string, err error) error {
	if err == nil {
		return nil
	}
	// goose wraps a failed lock in "failed to initialize"; the lock's own
	// message says everything.
	var lockErr *MigrationLockError
	if errors.As(err, &lockErr) {
		return fmt.Errorf("%s: %w", what, lockErr)
	}
	return fmt.Errorf("%s: %w", what, RedactError(err))
}
