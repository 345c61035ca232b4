package database_test

import (
	"context"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/attune-automation/attunectl/migrations"
	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// statusAndVersion runs what `migrate status` and `migrate version` run.
// embeddedMigrations counts the migration files in the binary and returns
// the highest version.
func embeddedMigrations(t *testing.T) (n int, latest int64) {
	t.Helper()
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		v, err := strconv.ParseInt(strings.SplitN(name, "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("migration file %s: %v", name, err)
		}
		latest = max(latest, v)
	}
	return len(names), latest
}

func statusAndVersion(t *testing.T, dbURL, schema string) (applied int, current, latest int64) {
	t.Helper()
	ctx := context.Background()
	db, err := database.Open(ctx, database.Options{URL: dbURL, Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		t.Fatalf("NewMigrator: %v", err)
	}
	defer m.Close()
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, s := range st {
		if s.Applied {
			applied++
			if s.AppliedAt.IsZero() {
				t.Errorf("migration %d applied without a time", s.Version)
			}
		}
	}
	if n, _ := embeddedMigrations(t); len(st) != n {
		t.Errorf("Status lists %d migrations, want the %d embedded", len(st), n)
	}
	current, latest, err = m.Version(ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	return applied, current, latest
}

// TestReadOnlyCommandsRunNoDDL: `migrate status` and `migrate version` only
// read — on a database never migrated they create neither the schema nor
// goose's version table; they work for a role without CREATE and on a hot
// standby; and a mistyped --schema is "not migrated" and creates nothing.
func TestReadOnlyCommandsRunNoDDL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("never migrated", func(t *testing.T) {
		t.Parallel()
		tdb := dbtest.NewEmpty(t)
		applied, cur, latest := statusAndVersion(t, tdb.URL, "attune")
		if _, last := embeddedMigrations(t); applied != 0 || cur != 0 || latest != last {
			t.Errorf("status/version of an empty database: %d applied, version %d of %d", applied, cur, latest)
		}
		// Nor does a `migrate down` with nothing to roll back.
		db, err := database.Open(ctx, database.Options{URL: tdb.URL, Schema: "attune"})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		m, err := database.NewMigrator(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := m.Down(ctx); err == nil || !strings.Contains(err.Error(), "nothing to roll back") {
			t.Errorf("Down on a database never migrated: %v", err)
		}
		if res, err := m.DownTo(ctx, 0); err != nil || len(res) != 0 {
			t.Errorf("DownTo(0) on a database never migrated: %v, %d rolled back", err, len(res))
		}
		var schemas, tables int
		if err := tdb.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'attune'),
			(SELECT count(*) FROM pg_class WHERE relname = 'goose_db_version')`).Scan(&schemas, &tables); err != nil {
			t.Fatal(err)
		}
		if schemas != 0 || tables != 0 {
			t.Errorf("status/version created %d schemas and %d version tables", schemas, tables)
		}
	})

	t.Run("mistyped schema", func(t *testing.T) {
		t.Parallel()
		tdb := dbtest.New(t)
		db, err := database.Open(ctx, database.Options{URL: tdb.URL, Schema: "atune"})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.RequireSchema(); err == nil || !strings.Contains(err.Error(), `schema "atune" is not migrated`) {
			t.Errorf("RequireSchema with a mistyped schema: %v", err)
		}
		applied, cur, _ := statusAndVersion(t, tdb.URL, "atune")
		if applied != 0 || cur != 0 {
			t.Errorf("status of a mistyped schema: %d applied, version %d", applied, cur)
		}
		var n int
		if err := tdb.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = 'atune'").Scan(&n); err != nil || n != 0 {
			t.Errorf("the mistyped schema was created (%d, %v)", n, err)
		}
	})

	t.Run("role without CREATE", func(t *testing.T) {
		t.Parallel()
		tdb := dbtest.New(t)
		role := "ro_" + tdb.Name
		for _, stmt := range []string{
			"CREATE ROLE " + pgx.Identifier{role}.Sanitize() + " LOGIN",
			"REVOKE CREATE ON DATABASE " + pgx.Identifier{tdb.Name}.Sanitize() + " FROM PUBLIC",
			"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
			"GRANT USAGE ON SCHEMA attune TO " + pgx.Identifier{role}.Sanitize(),
			"GRANT SELECT ON ALL TABLES IN SCHEMA attune TO " + pgx.Identifier{role}.Sanitize(),
		} {
			if _, err := tdb.Pool.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		t.Cleanup(func() {
			// Runs before the database is dropped: revoke, then drop the role.
			_, _ = tdb.Pool.Exec(context.Background(), "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
			_, _ = dbtest.Admin(t).Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
		})
		u, err := url.Parse(tdb.URL)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.User(role)
		applied, cur, latest := statusAndVersion(t, u.String(), "attune")
		if n, last := embeddedMigrations(t); applied != n || cur != last || latest != last {
			t.Errorf("status/version for a role without CREATE: %d applied, version %d of %d", applied, cur, latest)
		}
	})

	t.Run("hot standby", func(t *testing.T) {
		t.Parallel()
		primary := dbtest.NewServer(t, embeddedpg.Options{ListenAddress: "127.0.0.1"})
		db, err := database.Open(ctx, database.Options{URL: primary.ConnString("attune"), Schema: "attune"})
		if err != nil {
			t.Fatal(err)
		}
		err = database.MigrateUp(ctx, db)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		standby := dbtest.NewStandby(t, primary)
		applied, cur, latest := statusAndVersion(t, standby.ConnString("attune"), "attune")
		if n, last := embeddedMigrations(t); applied != n || cur != last || latest != last {
			t.Errorf("status/version on a hot standby: %d applied, version %d of %d", applied, cur, latest)
		}
	})
}
