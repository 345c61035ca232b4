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
	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/attune-automation/attunectl/pkg/workers"
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
			return workers.Names(ctx, db, toComplete)
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

// completeRuntimeRefs completes the refs of the runtime table (or of the
// manifest given with -f), leaving out those already on the line. It asks
// the database for at most completionTimeout, uses the embedded server only
// when it is already running, and completes nothing on any failure.
func completeRuntimeRefs(app *App) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterCompletions(runtimeRefsForCompletion(cmd, app), args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func runtimeRefsForCompletion(cmd *cobra.Command, app *App) []string {
	if err := prepareCompletion(cmd, app); err != nil {
		return nil
	}
	if fl := cmd.Flags().Lookup("filename"); fl != nil && fl.Value.String() != "" {
		if fl.Value.String() == "-" {
			return nil
		}
		rts, err := readManifestFile(app, fl.Value.String())
		if err != nil {
			return nil
		}
		return runtimes.Refs(rts)
	}
	return completionQuery(cmd, app, func(ctx context.Context, db *database.DB) ([]string, error) {
		rts, err := runtimes.List(ctx, db, runtimes.Filter{})
		return runtimes.Refs(rts), err
	})
}
