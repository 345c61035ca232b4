package database_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// seedWorker is the seed's era of Attune's worker table: no unique name.
const seedWorker = `
CREATE SCHEMA attune;
SET search_path = attune;
CREATE TYPE worker_type_enum AS ENUM ('local', 'remote', 'container');
CREATE TYPE worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');
CREATE TYPE runtime_type_enum AS ENUM ('action', 'sensor');
CREATE TABLE runtime (id bigserial PRIMARY KEY, ref text NOT NULL UNIQUE, pack_ref text, description text,
	runtime_type runtime_type_enum NOT NULL, name text NOT NULL, distributions jsonb NOT NULL, installation jsonb,
	created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE worker (id bigserial PRIMARY KEY, name text NOT NULL, worker_type worker_type_enum NOT NULL,
	runtime bigint REFERENCES runtime(id), host text, port integer, status worker_status_enum DEFAULT 'inactive',
	capabilities jsonb, meta jsonb, last_heartbeat timestamptz,
	created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now());
CREATE INDEX idx_worker_name ON worker(name);
INSERT INTO worker (name, worker_type, host) VALUES ('a', 'local', 'h1'), ('b', 'local', 'h2');
`

func seedMigrator(t *testing.T) (*dbtest.DB, *database.DB, *database.Migrator) {
	t.Helper()
	tdb := dbtest.NewEmpty(t)
	if _, err := tdb.Pool.Exec(context.Background(), seedWorker); err != nil {
		t.Fatal(err)
	}
	db := open(t, tdb.URL, "attune")
	m, err := database.NewMigrator(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return tdb, db, m
}

// nameKey describes worker_name_key: "" when absent, else whether it is a
// valid index, a constraint, and its comment.
func nameKey(t *testing.T, tdb *dbtest.DB) string {
	t.Helper()
	var s string
	err := tdb.Pool.QueryRow(context.Background(), `
		SELECT coalesce((SELECT format('valid=%s constraint=%s comment=%s', i.indisvalid,
			EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid),
			obj_description(i.indexrelid, 'pg_class'))
		FROM pg_index i WHERE i.indexrelid = to_regclass('attune.worker_name_key')), '')`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The pre-flight builds the unique index concurrently, before any migration;
// migration 00007 attaches it as the constraint; down removes only that.
func TestPreflightBuildsUniqueNameIndexConcurrently(t *testing.T) {
	ctx := context.Background()
	tdb, _, m := seedMigrator(t)
	if err := m.Preflight(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if got := nameKey(t, tdb); got != "" {
		t.Fatalf("pre-flight for version 6 built worker_name_key: %s", got)
	}
	if err := m.Preflight(ctx, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if got, want := nameKey(t, tdb), "valid=t constraint=f comment=attunectl: built before migration 00007"; got != want {
		t.Fatalf("after pre-flight: %s, want %s", got, want)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := nameKey(t, tdb), "valid=t constraint=t comment=attunectl: created by migration 00007"; got != want {
		t.Fatalf("after up: %s, want %s", got, want)
	}
	if _, err := m.DownTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := nameKey(t, tdb); got != "" {
		t.Fatalf("after down: %s", got)
	}
	var n int
	if err := tdb.Pool.QueryRow(ctx, "SELECT count(*) FROM attune.worker").Scan(&n); err != nil || n != 2 {
		t.Fatalf("after down, %d workers (%v)", n, err)
	}
}

// An index left invalid by an interrupted concurrent build is replaced.
func TestPreflightReplacesAnInvalidIndex(t *testing.T) {
	ctx := context.Background()
	tdb, _, m := seedMigrator(t)
	if _, err := tdb.Pool.Exec(ctx, `CREATE UNIQUE INDEX worker_name_key ON attune.worker (name);
		UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'attune.worker_name_key'::regclass`); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := nameKey(t, tdb), "valid=t constraint=t comment=attunectl: created by migration 00007"; got != want {
		t.Fatalf("after up: %s, want %s", got, want)
	}
}

// Duplicate names: refused before anything changes, with the rows named.
func TestPreflightRefusesDuplicateNames(t *testing.T) {
	ctx := context.Background()
	tdb, _, m := seedMigrator(t)
	if _, err := tdb.Pool.Exec(ctx, `INSERT INTO attune.worker (name, worker_type, host, last_heartbeat) VALUES ('a', 'remote', 'h9', now())`); err != nil {
		t.Fatal(err)
	}
	_, err := m.Up(ctx)
	var de *database.DuplicateNamesError
	if !errors.As(err, &de) || len(de.Rows) != 2 || de.Rows[0].ID != 1 || de.Rows[1].Host != "h9" {
		t.Fatalf("want a DuplicateNamesError naming rows 1 and 3, got %v", err)
	}
	for _, want := range []string{"nothing was changed", "DELETE FROM \"attune\".\"worker\" WHERE id IN", "never"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%s", want, err)
		}
	}
	var tables int
	if err := tdb.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'attune'").Scan(&tables); err != nil || tables != 2 {
		t.Errorf("tables in attune: %d (%v), want the 2 Attune made (no goose_db_version)", tables, err)
	}
	if got := nameKey(t, tdb); got != "" {
		t.Errorf("worker_name_key after refusal: %s", got)
	}
}

// A table that lacks a column every command reads is named at connect time,
// with what to do, instead of failing later with a raw SQL error.
func TestRequireSchemaNamesMissingColumns(t *testing.T) {
	ctx := context.Background()
	tdb := dbtest.New(t)
	if _, err := tdb.Pool.Exec(ctx, `ALTER TABLE attune.worker DROP COLUMN meta`); err != nil {
		t.Fatal(err)
	}
	db := open(t, tdb.URL, "attune")
	err := db.RequireSchema()
	if err == nil || !strings.Contains(err.Error(), "worker.meta column not found (run `attunectl migrate up`") {
		t.Fatalf("RequireSchema: %v", err)
	}
	if err := db.Require(database.UniqueColumn("worker", "name", "")); err != nil {
		t.Errorf("unique worker.name of a migrated database: %v", err)
	}
}

// Without the pre-flight (goose run by other means), migration 00007 builds
// the index itself, in its transaction, and attaches it.
func TestUniqueNameMigrationWithoutPreflight(t *testing.T) {
	ctx := context.Background()
	tdb, _, m := seedMigrator(t)
	if err := m.UpWithoutPreflight(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := nameKey(t, tdb), "valid=t constraint=t comment=attunectl: created by migration 00007"; got != want {
		t.Fatalf("after up: %s, want %s", got, want)
	}
}
