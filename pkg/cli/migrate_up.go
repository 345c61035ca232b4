package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
)

// migrateUpOptions are the options of `migrate up`.
type migrateUpOptions struct {
	To    int64
	HasTo bool
}

// Validate checks --to.
func (o migrateUpOptions) Validate() error {
	if o.HasTo && o.To < 0 {
		return usageErrorf("--to %d: versions start at 1", o.To)
	}
	return nil
}

func newMigrateUpCmd(app *App) *cobra.Command {
	var o migrateUpOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration (or up to --to VERSION)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.HasTo = cmd.Flags().Changed("to")
			if err := o.Validate(); err != nil {
				return err
			}
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				return runMigrateUp(ctx, app, m, o)
			})
		},
	}
	cmd.Flags().Int64Var(&o.To, "to", 0, "apply migrations up to and including this version")
	return cmd
}

func runMigrateUp(ctx context.Context, app *App, m *database.Migrator, o migrateUpOptions) error {
	var (
		res []database.MigrationResult
		err error
	)
	if o.HasTo {
		_, latest, err := m.Version(ctx)
		if err != nil {
			return err
		}
		if o.To > latest {
			return usageErrorf("--to %d: the latest migration is %d (see `attunectl migrate status`)", o.To, latest)
		}
		res, err = m.UpTo(ctx, o.To)
	} else {
		res, err = m.Up(ctx)
	}
	printResults(app, res)
	if err != nil {
		return err
	}
	cur, _, err := m.Version(ctx)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		fmt.Fprintf(app.Out, "schema %q is up to date at version %d\n", app.Config.Database.Schema, cur)
	} else {
		fmt.Fprintf(app.Out, "schema %q is at version %d\n", app.Config.Database.Schema, cur)
	}
	return nil
}
