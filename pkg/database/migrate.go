package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/attune-automation/attunectl/migrations"
)

// Migrator applies the embedded migrations with goose's Provider and a
// Postgres session (advisory) lock, so that several `migrate up` at once
// apply each migration exactly once. goose's version table lands in the
// configured schema, beside the tables it describes.
type Migrator struct {
	db       *DB
	sqlDB    *sql.DB
	provider *goose.Provider
}

// NewMigrator creates the configured schema when it is missing and prepares
// the provider. Close releases it.
func NewMigrator(ctx context.Context, db *DB) (*Migrator, error) {
	if _, err := db.Pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{db.Schema}.Sanitize()); err != nil {
		return nil, fmt.Errorf("creating schema %q: %w (ask for CREATE privilege on the database, or create the schema yourself)", db.Schema, RedactError(err))
	}
	h := fnv.New64a()
	h.Write([]byte("attunectl-migrate:" + db.Schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()>>1)),
		lock.WithLockTimeout(1, 300), // wait up to 5 minutes for another migrate
	)
	if err != nil {
		return nil, fmt.Errorf("creating migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	return &Migrator{db: db, sqlDB: sqlDB, provider: p}, nil
}

// Close releases the *sql.DB wrapper; the pool stays open.
func (m *Migrator) Close() error { return m.sqlDB.Close() }

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) ([]MigrationResult, error) {
	res, err := m.provider.Up(ctx)
	if ierr := m.db.Introspect(ctx); ierr != nil && err == nil {
		err = ierr
	}
	return migrationResults(res), wrapMigrate("applying migrations", err)
}

// UpTo applies pending migrations up to and including version.
func (m *Migrator) UpTo(ctx context.Context, version int64) ([]MigrationResult, error) {
	res, err := m.provider.UpTo(ctx, version)
	_ = m.db.Introspect(ctx)
	return migrationResults(res), wrapMigrate("applying migrations", err)
}

// Down rolls back the latest applied migration.
func (m *Migrator) Down(ctx context.Context) (*MigrationResult, error) {
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
	res, err := m.provider.DownTo(ctx, version)
	_ = m.db.Introspect(ctx)
	return migrationResults(res), wrapMigrate("rolling back", err)
}

// Status lists every migration with whether and when it was applied.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, error) {
	st, err := m.provider.Status(ctx)
	return migrationStatuses(st), wrapMigrate("reading migration status", err)
}

// Version returns the current database version and the latest available.
func (m *Migrator) Version(ctx context.Context) (current, latest int64, err error) {
	current, latest, err = m.provider.GetVersions(ctx)
	return current, latest, wrapMigrate("reading migration version", err)
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
	return fmt.Errorf("%s: %w", what, RedactError(err))
}
