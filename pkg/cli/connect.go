package cli

import (
	"context"
	"fmt"

	"github.com/attune-automation/attunectl/pkg/database"
)

// connectOptions says how a command wants its database.
type connectOptions struct {
	// skipSchemaCheck: migrate commands work on an unmigrated schema.
	skipSchemaCheck bool
	// noStatementTimeout: migrations may take longer than a query.
	noStatementTimeout bool
}

// connect opens the configured database, or the embedded one when none is
// configured (migrating it on first use).
func (a *App) connect(ctx context.Context, co connectOptions) (*database.DB, error) {
	c := a.Config.Database
	opts := database.Options{
		URL:            c.URL,
		Schema:         c.Schema,
		ConnectTimeout: c.ConnectTimeout.D(),
		MaxConns:       int32(c.MaxConnections),
	}
	if !co.noStatementTimeout {
		opts.StatementTimeout = c.StatementTimeout.D()
	}
	embedded := opts.URL == ""
	if embedded {
		url, err := a.startEmbedded(ctx)
		if err != nil {
			return nil, err
		}
		opts.URL = url
	}
	db, err := database.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	if embedded && !co.skipSchemaCheck && db.RequireSchema() != nil {
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
