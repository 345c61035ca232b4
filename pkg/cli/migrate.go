package cli

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
)

type migrateOptions struct {
	To    int64
	HasTo bool
}

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

	var up migrateOptions
	upCmd := &cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration (or up to --to VERSION)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			up.HasTo = cmd.Flags().Changed("to")
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				var res []*goose.MigrationResult
				var err error
				if up.HasTo {
					if up.To < 0 {
						return usageErrorf("--to %d: versions start at 1", up.To)
					}
					res, err = m.UpTo(ctx, up.To)
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
			})
		},
	}
	upCmd.Flags().Int64Var(&up.To, "to", 0, "apply migrations up to and including this version")

	var down migrateOptions
	downCmd := &cobra.Command{
		Use:   "down",
		Short: "Roll back the latest migration (or every one above --to VERSION)",
		Long: `Roll back the latest applied migration, or with --to every migration above
that version (--to 0 rolls back everything). Only objects attunectl created are
dropped; tables that existed before attunectl's migrations are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			down.HasTo = cmd.Flags().Changed("to")
			if down.HasTo && down.To < 0 {
				return usageErrorf("--to %d: cannot migrate below version 0", down.To)
			}
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				cur, _, err := m.Version(ctx)
				if err != nil {
					return err
				}
				var res []*goose.MigrationResult
				switch {
				case down.HasTo && down.To >= cur:
					return usageErrorf("schema %q is at version %d, not above %d: nothing to roll back", app.Config.Database.Schema, cur, down.To)
				case down.HasTo:
					res, err = m.DownTo(ctx, down.To)
				case cur == 0:
					return usageErrorf("schema %q is at version 0: nothing to roll back", app.Config.Database.Schema)
				default:
					var r *goose.MigrationResult
					r, err = m.Down(ctx)
					if r != nil {
						res = append(res, r)
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
				fmt.Fprintf(app.Out, "schema %q is at version %d\n", app.Config.Database.Schema, cur)
				return nil
			})
		},
	}
	downCmd.Flags().Int64Var(&down.To, "to", 0, "roll back every migration above this version (0: all)")

	statusCmd := &cobra.Command{
		Use:     "status",
		Short:   "List the migrations and whether each is applied",
		Args:    cobra.NoArgs,
		Example: "  attunectl migrate status\n  attunectl migrate status -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := app.outputFormat(output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				st, err := m.Status(ctx)
				if err != nil {
					return err
				}
				return printStatus(app, f, st)
			})
		},
	}

	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the schema's current migration version and the latest available",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := app.outputFormat(output.Table, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				cur, latest, err := m.Version(ctx)
				if err != nil {
					return err
				}
				v := struct {
					Schema  string `json:"schema"`
					Current int64  `json:"current"`
					Latest  int64  `json:"latest"`
				}{app.Config.Database.Schema, cur, latest}
				switch f {
				case output.JSON:
					return output.WriteJSON(app.Out, v)
				case output.YAML:
					return output.WriteYAML(app.Out, v)
				}
				fmt.Fprintf(app.Out, "schema %q: version %d of %d\n", v.Schema, v.Current, v.Latest)
				return nil
			})
		},
	}
	cmd.AddCommand(upCmd, downCmd, statusCmd, versionCmd)
	return cmd
}

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

func printResults(app *App, res []*goose.MigrationResult) {
	for _, r := range res {
		if r == nil || r.Source == nil {
			continue
		}
		verb := "applied"
		if r.Direction == "down" {
			verb = "rolled back"
		}
		if r.Error != nil {
			verb = "FAILED"
		}
		fmt.Fprintf(app.Out, "%-11s %05d %s (%s)\n", verb, r.Source.Version, path.Base(r.Source.Path), r.Duration.Round(time.Millisecond))
	}
}

type migrationStatus struct {
	Version   int64      `json:"version"`
	Name      string     `json:"name"`
	Applied   bool       `json:"applied"`
	AppliedAt *time.Time `json:"applied_at"`
}

func printStatus(app *App, f output.Format, st []*goose.MigrationStatus) error {
	rows := make([]migrationStatus, 0, len(st))
	for _, s := range st {
		r := migrationStatus{Version: s.Source.Version, Name: path.Base(s.Source.Path), Applied: s.State == goose.StateApplied}
		if r.Applied && !s.AppliedAt.IsZero() {
			t := s.AppliedAt.UTC()
			r.AppliedAt = &t
		}
		rows = append(rows, r)
	}
	switch f {
	case output.JSON:
		return output.WriteJSON(app.Out, rows)
	case output.YAML:
		return output.WriteYAML(app.Out, rows)
	}
	pal := app.palette(app.Out)
	t := output.NewTable(app.Out, "VERSION", "NAME", "STATE", "APPLIED AT")
	for _, r := range rows {
		state, at := pal.Yellow("pending"), ""
		if r.Applied {
			state = pal.Green("applied")
			if r.AppliedAt != nil {
				at = r.AppliedAt.Format(time.RFC3339)
			}
		}
		t.Append(fmt.Sprintf("%05d", r.Version), r.Name, state, at)
	}
	return t.Render()
}
