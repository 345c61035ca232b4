package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/sandbox"
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
	var srv *embeddedpg.Server
	if embedded {
		var err error
		if srv, err = a.startEmbedded(ctx); err != nil {
			return nil, err
		}
		opts.URL = srv.ConnString(embeddedpg.DefaultDatabase)
	}
	created := srv != nil && srv.CreatedDatabase()
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
		// One short line when this command started the embedded server
		// (or created its schema), through the logger so that --log-level
		// warn quiets it and --log-format json shapes it; the commands
		// that find it running say so only at debug level.
		a.embeddedNoted = true
		level, msg := slog.LevelDebug, "using the embedded PostgreSQL"
		switch {
		case migrated:
			level, msg = slog.LevelInfo, "no database configured: started the embedded PostgreSQL and created its schema (attunectl embedded stop stops it)"
		case srv.Started():
			level, msg = slog.LevelInfo, "no database configured: started the embedded PostgreSQL (attunectl embedded stop stops it)"
		}
		a.Log.Log(ctx, level, msg, "data_dir", srv.DataDir())
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

// startEmbedded starts (or finds running) the embedded server.
func (a *App) startEmbedded(ctx context.Context) (*embeddedpg.Server, error) {
	opts, err := a.embeddedOptions()
	if err != nil {
		return nil, err
	}
	srv, err := embeddedpg.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded database: %w", err)
	}
	return srv, nil
}

// checkRunAsIsNotTheServer refuses to run commands from the database as the
// user the embedded PostgreSQL runs as (the owner of its data directory,
// e.g. nobody where no postgres user exists): such a command could rewrite
// pg_hba.conf and become the database's superuser. Only when attunectl
// switches users: as an ordinary user, server and commands are that user.
func (a *App) checkRunAsIsNotTheServer(sb *sandbox.Sandbox) error {
	if a.Config.Database.URL != "" || sb == nil || !sb.SwitchesUser() {
		return nil
	}
	opts, err := a.embeddedOptions()
	if err != nil {
		return nil
	}
	owner, ok := embeddedpg.DataDirOwner(opts.DataDir)
	if ok && owner == sb.User().UID {
		return usageErrorf("sensor.run_as is %s, the user the embedded PostgreSQL runs as: a command from the database could change the server's files and become its superuser; choose another user, or leave sensor.run_as unset as root for an unprivileged uid of their own", sb.User())
	}
	return nil
}
