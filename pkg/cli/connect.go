package cli

import (
	"context"
	"fmt"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// connectOptions says how a command wants its database.
type connectOptions struct {
	// skipSchemaCheck: migrate commands work on an unmigrated schema.
	skipSchemaCheck bool
	// noStatementTimeout: migrations may take longer than a query.
	noStatementTimeout bool
	// migrateEmbedded: bring the embedded database up to date even when it
	// already existed (`embedded start`). Otherwise the embedded database
	// is migrated only by the command that created it (and by `migrate
	// up`): a read-only command never changes a schema.
	migrateEmbedded bool
}

// connect opens the configured database, or the embedded one when none is
// configured (migrating it when this very call created it).
func (a *App) connect(ctx context.Context, co connectOptions) (*database.DB, error) {
	c := a.Config.Database
	opts := database.Options{
		URL:            c.URL,
		Schema:         c.Schema,
		ConnectTimeout: c.ConnectTimeout.D(),
		MaxConns:       int32(c.MaxConnections),
		Logger:         a.Log,
	}
	if !co.noStatementTimeout {
		opts.StatementTimeout = c.StatementTimeout.D()
	}
	embedded := opts.URL == ""
	created := false
	dataDir := ""
	if embedded {
		url, dir, c, err := a.startEmbedded(ctx)
		if err != nil {
			return nil, err
		}
		opts.URL, dataDir, created = url, dir, c
	}
	if !embedded {
		// A URL that cannot be parsed is bad input (exit 2), not a failed connection.
		if _, err := database.PoolConfig(opts); err != nil {
			return nil, usageError(err)
		}
	}
	db, err := database.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	migrated := false
	if embedded && (created || co.migrateEmbedded) && db.RequireSchema() != nil {
		if err := database.MigrateUp(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("migrating the embedded database: %w", err)
		}
		migrated = true
	}
	if embedded && !a.embeddedNoted {
		// One short line, once per process, through the logger so that
		// --log-level warn quiets it and --log-format json shapes it.
		a.embeddedNoted = true
		msg := "no database configured: using the embedded PostgreSQL"
		if migrated {
			msg = "no database configured: using the embedded PostgreSQL (schema created)"
		}
		a.Log.Info(msg, "data_dir", dataDir)
	}
	if !co.skipSchemaCheck {
		if err := db.RequireSchema(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// withDB connects to the configured (or embedded) database for fn.
func withDB(ctx context.Context, app *App, fn func(*database.DB) error) error {
	db, err := app.connect(ctx, connectOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// embeddedOptions locates the embedded server from the configuration.
func (a *App) embeddedOptions() (embeddedpg.Options, error) {
	dir := a.Config.Embedded.DataDir
	if dir == "" {
		d, err := embeddedpg.DefaultDataDir()
		if err != nil {
			return embeddedpg.Options{}, fmt.Errorf("finding a data directory for the embedded database: %w (set embedded.data_dir or ATTUNE__EMBEDDED__DATA_DIR)", err)
		}
		dir = d
	}
	return embeddedpg.Options{DataDir: dir}, nil
}

// startEmbedded starts (or reuses) the embedded server and returns its URL,
// its data directory and whether this start created its database.
func (a *App) startEmbedded(ctx context.Context) (string, string, bool, error) {
	opts, err := a.embeddedOptions()
	if err != nil {
		return "", "", false, err
	}
	srv, err := embeddedpg.Start(ctx, opts)
	if err != nil {
		return "", "", false, fmt.Errorf("starting the embedded database: %w", err)
	}
	return srv.ConnString("attune"), srv.DataDir(), srv.CreatedDatabase(), nil
}
