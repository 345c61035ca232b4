package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
)

// migrateDownOptions are the options of `migrate down`.
type migrateDownOptions struct {
	To    int64
	HasTo bool
	// Yes drops tables that hold rows without asking.
	Yes bool
	// Interactive: stdin and stderr are a terminal, so down may ask.
	Interactive bool
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
dropped; tables that existed before attunectl's migrations are kept.

Rolling back below version 1 drops the worker and runtime tables attunectl
created. When they hold rows (other than the seeded runtimes) down asks on a
terminal; otherwise it needs --yes, and without it refuses (exit status 2)
with nothing changed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.HasTo = cmd.Flags().Changed("to")
			o.Interactive = app.IsStdinTTY() && app.IsStderrTTY()
			if err := o.Validate(); err != nil {
				return err
			}
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				return runMigrateDown(ctx, app, m, o)
			})
		},
	}
	cmd.Flags().Int64Var(&o.To, "to", 0, "roll back every migration above this version (0: all)")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "drop tables that hold rows without asking")
	return cmd
}

func runMigrateDown(ctx context.Context, app *App, m *database.Migrator, o migrateDownOptions) error {
	schema := app.Config.Database.Schema
	cur, _, err := m.Version(ctx)
	if err != nil {
		return err
	}
	if err := confirmDrops(ctx, app, m, o, cur); err != nil {
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

// confirmDrops asks before a rollback drops tables that hold rows, or
// refuses without a terminal and without --yes. Invalid rollbacks fall
// through to runMigrateDown's own errors.
func confirmDrops(ctx context.Context, app *App, m *database.Migrator, o migrateDownOptions, cur int64) error {
	target := cur - 1
	if o.HasTo {
		target = o.To
	}
	if o.Yes || target >= cur {
		return nil
	}
	tables, err := m.DroppedTables(ctx, target)
	if err != nil || len(tables) == 0 {
		return err
	}
	parts := make([]string, len(tables))
	for i, t := range tables {
		rows := "rows"
		if t.Rows == 1 {
			rows = "row"
		}
		parts[i] = fmt.Sprintf("%s (%d %s)", t.Table, t.Rows, rows)
	}
	drops := "table " + strings.Join(parts, " and ")
	if len(parts) > 1 {
		drops = "tables " + strings.Join(parts, " and ")
	}
	if !o.Interactive {
		return usageErrorf("rolling back schema %q to version %d drops %s: pass --yes to drop them, or back them up first (nothing was changed)", app.Config.Database.Schema, target, drops)
	}
	ok, err := confirm(app, fmt.Sprintf("Roll back schema %q to version %d, dropping %s? [y/N] ", app.Config.Database.Schema, target, drops))
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(app.Err, "aborted: nothing was changed")
		return &exitError{code: ExitError}
	}
	return nil
}
