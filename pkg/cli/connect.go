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
	if embedded {
		url, c, err := a.startEmbedded(ctx)
		if err != nil {
			return nil, err
		}
		opts.URL, created = url, c
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
	if embedded && (created || co.migrateEmbedded) && db.RequireSchema() != nil {
		if err := database.MigrateUp(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("migrating the embedded database: %w", err)
		}
		a.Log.Info("migrated the embedded database", "schema", db.Schema)
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

// startEmbedded starts (or reuses) the embedded server and returns its URL
// and whether this start created its database.
func (a *App) startEmbedded(ctx context.Context) (string, bool, error) {
	opts, err := a.embeddedOptions()
	if err != nil {
		return "", false, err
	}
	srv, err := embeddedpg.Start(ctx, opts)
	if err != nil {
		return "", false, fmt.Errorf("starting the embedded database: %w", err)
	}
	if !a.embeddedNoted {
		a.embeddedNoted = true
		// One log line, so --log-level and --log-format apply to it.
		a.Log.Info("no database configured: using the embedded PostgreSQL", "data_dir", srv.DataDir(),
			"hint", "stop it with `attunectl embedded stop`; set --database-url or ATTUNE__DATABASE__URL to use another server")
	}
	return srv.ConnString("attune"), srv.CreatedDatabase(), nil
}
