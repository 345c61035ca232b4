package cli

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// completionTimeout bounds the database query behind shell completion of
// runtime refs and worker names: a completion that hangs is worse than none.
const completionTimeout = 2 * time.Second

// prepareCompletion silences the App (completion output must be the
// candidates only) and loads the configuration again, so that flags typed on
// the command line being completed (--database-url) count: the root's
// PersistentPreRunE ran for the hidden __complete command, not this one.
func prepareCompletion(cmd *cobra.Command, app *App) error {
	app.Err = io.Discard
	return app.load(cmd)
}

// completionQuery runs query against the configured database for at most
// completionTimeout. It never starts the embedded server (only uses it when
// it is already running) and returns nothing on any failure.
func completionQuery(cmd *cobra.Command, app *App, query func(context.Context, *database.DB) ([]string, error)) []string {
	if app.Config.Database.URL == "" {
		opts, err := app.embeddedOptions()
		if err != nil {
			return nil
		}
		if st, err := embeddedpg.StatusOf(opts); err != nil || !st.Running {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	db, err := app.connect(ctx, connectOptions{})
	if err != nil {
		return nil
	}
	defer db.Close()
	out, err := query(ctx, db)
	if err != nil {
		return nil
	}
	return out
}

// completeWorkerNames completes worker names from the worker table, leaving
// out those already on the line.
func completeWorkerNames(app *App) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if err := prepareCompletion(cmd, app); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := completionQuery(cmd, app, func(ctx context.Context, db *database.DB) ([]string, error) {
			rows, err := db.Pool.Query(ctx, "SELECT name FROM worker WHERE starts_with(name, $1) ORDER BY name LIMIT 1000", toComplete)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var names []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return nil, err
				}
				names = append(names, n)
			}
			return names, rows.Err()
		})
		return filterCompletions(names, args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// filterCompletions keeps the candidates that start with toComplete and are
// not already on the command line.
func filterCompletions(candidates, args []string, toComplete string) []cobra.Completion {
	var out []cobra.Completion
	for _, c := range candidates {
		if strings.HasPrefix(c, toComplete) && !slices.Contains(args, c) {
			out = append(out, c)
		}
	}
	return out
}
