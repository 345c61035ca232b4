package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
)

// migrateDownOptions are the options of `migrate down`.
type migrateDownOptions struct {
	To    int64
	HasTo bool
}

// Validate checks --to.
func (o migrateDownOptions) Validate() error {
	if o.HasTo && o.To < 0 {
		return usageErrorf("--to %d: cannot migrate below version 0", o.To)
	}
	return nil
}

func newMigrateDownCmd(app *App) *cobra.Command {
	var o migrateDownOptions
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Roll back the latest migration (or every one above --to VERSION)",
		Long: `Roll back the latest applied migration, or with --to every migration above
that version (--to 0 rolls back everything). Only objects attunectl created are
dropped; tables that existed before attunectl's migrations are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.HasTo = cmd.Flags().Changed("to")
			if err := o.Validate(); err != nil {
				return err
			}
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				return runMigrateDown(ctx, app, m, o)
			})
		},
	}
	cmd.Flags().Int64Var(&o.To, "to", 0, "roll back every migration above this version (0: all)")
	return cmd
}

func runMigrateDown(ctx context.Context, app *App, m *database.Migrator, o migrateDownOptions) error {
	schema := app.Config.Database.Schema
	cur, _, err := m.Version(ctx)
	if err != nil {
		return err
	}
	var res []database.MigrationResult
	switch {
	case o.HasTo && o.To >= cur:
		return usageErrorf("schema %q is at version %d, not above %d: nothing to roll back", schema, cur, o.To)
	case o.HasTo:
		res, err = m.DownTo(ctx, o.To)
	case cur == 0:
		return usageErrorf("schema %q is at version 0: nothing to roll back", schema)
	default:
		var r *database.MigrationResult
		r, err = m.Down(ctx)
		if r != nil {
			res = append(res, *r)
		}
	}
	printResults(app, res)
	if err != nil {
		return err
	}
	cur, _, err = m.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(app.Out, "schema %q is at version %d\n", schema, cur)
	return nil
}
