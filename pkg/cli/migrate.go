package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
)

func newMigrateCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or inspect the schema migrations",
		Long: `Apply attunectl's schema migrations, which are embedded in the binary.

The migrations create only what is missing, so running them against a database
where Attune already created the worker and runtime tables adopts those tables
and keeps their rows. Rolling back drops only what attunectl itself created.
A Postgres advisory lock makes concurrent runs safe: each migration is applied
exactly once. The configured schema is created when it does not exist.`,
		Example: `  attunectl migrate up
  attunectl migrate status -o json
  attunectl migrate down --to 0`,
	}
	cmd.AddCommand(newMigrateUpCmd(app), newMigrateDownCmd(app), newMigrateStatusCmd(app), newMigrateVersionCmd(app))
	return cmd
}

// withMigrator connects without the schema check and the statement
// timeout (migrations work on an unmigrated schema and may take long).
func withMigrator(ctx context.Context, app *App, fn func(context.Context, *database.Migrator) error) error {
	db, err := app.connect(ctx, connectOptions{skipSchemaCheck: true, noStatementTimeout: true})
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := database.NewMigrator(ctx, db)
	if err != nil {
		return err
	}
	defer m.Close()
	return fn(ctx, m)
}

// printResults prints one line per migration applied or rolled back.
func printResults(app *App, res []database.MigrationResult) {
	for _, r := range res {
		verb := "applied"
		if r.Down {
			verb = "rolled back"
		}
		if r.Err != nil {
			verb = "FAILED"
		}
		fmt.Fprintf(app.Out, "%-11s %05d %s (%s)\n", verb, r.Version, r.Name, r.Duration.Round(time.Millisecond))
	}
}
