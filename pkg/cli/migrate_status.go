package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
)

// migrationStatus is a migration in `migrate status -o json|yaml`.
type migrationStatus struct {
	Version   int64      `json:"version"`
	Name      string     `json:"name"`
	Applied   bool       `json:"applied"`
	AppliedAt *time.Time `json:"applied_at"`
}

func viewOfMigration(s database.MigrationStatus) migrationStatus {
	r := migrationStatus{Version: s.Version, Name: s.Name, Applied: s.Applied}
	if r.Applied && !s.AppliedAt.IsZero() {
		t := s.AppliedAt.UTC()
		r.AppliedAt = &t
	}
	return r
}

// migrationSpec prints `migrate status`: pending yellow, applied green.
var migrationSpec = output.Spec[database.MigrationStatus]{
	Columns: []output.Column[database.MigrationStatus]{
		{Header: "VERSION", Cell: func(s database.MigrationStatus) string { return fmt.Sprintf("%05d", s.Version) }},
		{Header: "NAME", Cell: func(s database.MigrationStatus) string { return s.Name }},
		{Header: "STATE", Cell: func(s database.MigrationStatus) string {
			if s.Applied {
				return "applied"
			}
			return "pending"
		}, Color: func(s database.MigrationStatus) output.Color {
			if s.Applied {
				return output.Green
			}
			return output.Yellow
		}},
		{Header: "APPLIED AT", Cell: func(s database.MigrationStatus) string {
			if v := viewOfMigration(s); v.AppliedAt != nil {
				return v.AppliedAt.Format(time.RFC3339)
			}
			return ""
		}},
	},
	View: func(s database.MigrationStatus) any { return viewOfMigration(s) },
}

func newMigrateStatusCmd(app *App) *cobra.Command {
	return offerFormats(&cobra.Command{
		Use:     "status",
		Short:   "List the migrations and whether each is applied",
		Args:    noArgs,
		Example: "  attunectl migrate status\n  attunectl migrate status -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				st, err := m.Status(ctx)
				if err != nil {
					return err
				}
				return migrationSpec.PrintAll(app.Out, f, output.PrinterOptions{Palette: app.palette()}, st)
			})
		},
	}, migrationSpec.Formats())
}

// schemaVersion is `migrate version -o json|yaml`.
type schemaVersion struct {
	Schema  string `json:"schema"`
	Current int64  `json:"current"`
	Latest  int64  `json:"latest"`
}

func newMigrateVersionCmd(app *App) *cobra.Command {
	return offerFormats(&cobra.Command{
		Use:   "version",
		Short: "Print the schema's current migration version and the latest available",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			return withMigrator(cmd.Context(), app, func(ctx context.Context, m *database.Migrator) error {
				cur, latest, err := m.Version(ctx)
				if err != nil {
					return err
				}
				v := schemaVersion{app.Config.Database.Schema, cur, latest}
				if f != output.Table {
					return output.Write(app.Out, f, v)
				}
				fmt.Fprintf(app.Out, "schema %q: version %d of %d\n", v.Schema, v.Current, v.Latest)
				return nil
			})
		},
	}, output.Formats{output.Table, output.JSON, output.YAML})
}
