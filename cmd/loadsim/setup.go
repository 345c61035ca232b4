package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// schemaMark is the comment loadsim puts on the schema it creates: only a
// schema carrying it is ever dropped.
const schemaMark = "attunectl loadsim: simulated workers, dropped at the end of a run"

// startServer starts a PostgreSQL server of loadsim's own in a fresh
// directory under /tmp (reachable by the server's user when running as
// root) and returns its URL and a function that stops it and removes it.
// Its settings are a small production server's: durable (fsync on,
// synchronous_commit on) unless --ephemeral, the rest at PostgreSQL's
// defaults.
func startServer(ctx context.Context, o options, log io.Writer) (string, func(), error) {
	root, err := os.MkdirTemp("/tmp", "loadsim-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a directory for the database server: %w (is /tmp writable? or pass --database-url)", err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		os.RemoveAll(root)
		return "", nil, fmt.Errorf("making %s reachable for the server: %w", root, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	srv, err := embeddedpg.Start(sctx, embeddedpg.Options{
		DataDir:    filepath.Join(root, "data"),
		Ephemeral:  o.Ephemeral,
		Foreground: true,
		Settings: map[string]string{
			"max_connections": strconv.Itoa(o.Connections + 20),
		},
	})
	if err != nil {
		os.RemoveAll(root)
		return "", nil, fmt.Errorf("starting a PostgreSQL server for the simulation: %w (install the PostgreSQL server binaries, or pass --database-url)", err)
	}
	fmt.Fprintf(log, "loadsim: started PostgreSQL in %s (%s)\n", root, map[bool]string{true: "ephemeral: fsync off", false: "durable: fsync on"}[o.Ephemeral])
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Stop(sctx); err != nil {
			fmt.Fprintf(log, "loadsim: stopping the server: %v\n", err)
		}
		if o.Keep {
			fmt.Fprintf(log, "loadsim: kept the server's files in %s\n", root)
			return
		}
		os.RemoveAll(root)
	}
	return srv.ConnString(embeddedpg.DefaultDatabase), stop, nil
}

// prepareSchema creates loadsim's schema (replacing one an earlier run
// kept), migrates it with attunectl's migrations and applies the variant
// flags. It refuses a schema loadsim did not create.
func prepareSchema(ctx context.Context, o options, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the database: %w (check --database-url)", database.RedactError(err))
	}
	defer conn.Close(context.Background())
	var exists bool
	var comment *string
	err = conn.QueryRow(ctx, `SELECT true, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1`, o.Schema).Scan(&exists, &comment)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("looking for schema %q: %w", o.Schema, database.RedactError(err))
	}
	ident := pgx.Identifier{o.Schema}.Sanitize()
	if exists {
		if comment == nil || *comment != schemaMark {
			return fmt.Errorf("schema %q exists and was not created by loadsim: choose another --schema (loadsim creates its own and drops it at the end)", o.Schema)
		}
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			return fmt.Errorf("dropping the schema %q an earlier run kept: %w", o.Schema, database.RedactError(err))
		}
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		return fmt.Errorf("creating schema %q: %w (ask for CREATE privilege on the database)", o.Schema, database.RedactError(err))
	}
	if _, err := conn.Exec(ctx, "COMMENT ON SCHEMA "+ident+" IS "+quoteLiteral(schemaMark)); err != nil {
		return fmt.Errorf("marking schema %q: %w", o.Schema, database.RedactError(err))
	}

	db, err := database.Open(ctx, database.Options{URL: url, Schema: o.Schema, MaxConns: 2, AppName: "attunectl-loadsim"})
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		return err
	}
	if o.MigrateTo > 0 {
		_, err = m.UpTo(ctx, o.MigrateTo)
	} else {
		_, err = m.Up(ctx)
	}
	m.Close()
	if err != nil {
		return fmt.Errorf("migrating schema %q: %w", o.Schema, err)
	}
	if o.Fillfactor > 0 {
		if _, err := db.Pool.Exec(ctx, fmt.Sprintf("ALTER TABLE worker SET (fillfactor = %d)", o.Fillfactor)); err != nil {
			return fmt.Errorf("setting the fillfactor: %w", database.RedactError(err))
		}
	}
	if o.IndexLastHeartbeat {
		if _, err := db.Pool.Exec(ctx, "CREATE INDEX loadsim_last_heartbeat ON worker (last_heartbeat)"); err != nil {
			return fmt.Errorf("creating the index on last_heartbeat: %w", database.RedactError(err))
		}
	}
	return nil
}

// dropSchema removes loadsim's schema, if it still carries the mark.
func dropSchema(ctx context.Context, o options, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return database.RedactError(err)
	}
	defer conn.Close(context.Background())
	var comment *string
	err = conn.QueryRow(ctx, `SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1`, o.Schema).Scan(&comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return database.RedactError(err)
	}
	if comment == nil || *comment != schemaMark {
		return fmt.Errorf("schema %q lost loadsim's mark: not dropping it", o.Schema)
	}
	_, err = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{o.Schema}.Sanitize()+" CASCADE")
	return database.RedactError(err)
}

// openPool opens the simulated workers' pool: attunectl's pool
// configuration (search_path, application_name) with --connections
// connections and, when asked, attunectl.heartbeat_synchronous_commit, the
// setting the heartbeat statement reads for its synchronous_commit.
func openPool(ctx context.Context, o options, url string) (*database.DB, error) {
	cfg, err := database.PoolConfig(database.Options{URL: url, Schema: o.Schema, MaxConns: int32(o.Connections), AppName: "attunectl-loadsim"})
	if err != nil {
		return nil, err
	}
	if o.HeartbeatSyncCommit != "" {
		cfg.ConnConfig.RuntimeParams["attunectl.heartbeat_synchronous_commit"] = o.HeartbeatSyncCommit
	}
	cfg.MinConns = int32(o.Connections)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the database: %w", database.RedactError(err))
	}
	db := &database.DB{Pool: pool, Schema: o.Schema}
	if err := db.Introspect(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to the database: %w", database.RedactError(err))
	}
	if err := db.RequireSchema(); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
