package cli

import (
	"context"
	"errors"
	"fmt"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/placement"
)

// workerCordonOptions are the options of `worker cordon` and `worker uncordon`.
type workerCordonOptions struct {
	Name   string
	Reason string
	// By is who cordons: the OS user name.
	By     string
	Undo   bool
	Format output.Format
}

func newWorkerCordonCmd(app *App) *cobra.Command {
	o := &workerCordonOptions{}
	cmd := &cobra.Command{
		Use:   "cordon NAME [--reason TEXT]",
		Short: "Stop a worker from taking new sensors; it keeps those it holds",
		Long: `Cordon a worker: it takes no new sensors, keeps the ones it holds and keeps
heartbeating. The cordon is stored on the worker row (Attune's cordoned,
cordon_reason, cordoned_at; who cordoned is the OS user running attunectl), so
every worker and ` + "`worker list`" + ` see it. Cordoning a cordoned worker keeps its
first reason unless --reason gives a new one.

To move its sensors elsewhere as well, use ` + "`attunectl worker drain`" + `; to let it
take sensors again, ` + "`attunectl worker uncordon`" + `. An unknown worker is an
error (exit 2).

Output (-o): table (default: one line), json and yaml (worker, cordoned,
cordon_reason, cordoned_by, cordoned_at, changed).`,
		Example: `  attunectl worker cordon sensor-web-01 --reason "kernel upgrade"
  attunectl worker cordon sensor-web-01 -o json`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeOneWorkerName(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWorkerCordonCmd(cmd, app, o, args[0])
		},
	}
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why the worker is cordoned (shown by worker list -o wide)")
	return offerFormats(cmd, output.Formats{output.Table, output.JSON, output.YAML})
}

func newWorkerUncordonCmd(app *App) *cobra.Command {
	o := &workerCordonOptions{Undo: true}
	cmd := &cobra.Command{
		Use:   "uncordon NAME",
		Short: "Let a cordoned worker take sensors again (ends its drain)",
		Long: `Uncordon a worker: it takes sensors again at its next tick, and an
unfinished drain of it ends (what it handed over stays where it went). An
unknown worker is an error (exit 2).

Output (-o): table (default: one line), json and yaml (worker, cordoned,
changed).`,
		Example:           `  attunectl worker uncordon sensor-web-01`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeOneWorkerName(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWorkerCordonCmd(cmd, app, o, args[0])
		},
	}
	return offerFormats(cmd, output.Formats{output.Table, output.JSON, output.YAML})
}

// completeOneWorkerName completes a single worker name.
func completeOneWorkerName(app *App) cobra.CompletionFunc {
	names := completeWorkerNames(app)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names(cmd, args, toComplete)
	}
}

// operatorName is who runs attunectl, for cordoned_by: the OS user name.
func operatorName(app *App) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return app.Getenv("USER")
}

func runWorkerCordonCmd(cmd *cobra.Command, app *App, o *workerCordonOptions, name string) error {
	f, err := app.outputFormat(cmd)
	if err != nil {
		return err
	}
	o.Name, o.Format, o.By = name, f, operatorName(app)
	return withDB(cmd.Context(), app, func(db *database.DB) error {
		return runWorkerCordon(cmd.Context(), app, db, *o)
	})
}

// runWorkerCordon cordons (or, with o.Undo, uncordons) one worker.
func runWorkerCordon(ctx context.Context, app *App, db *database.DB, o workerCordonOptions) error {
	var c placement.Cordoned
	var err error
	if o.Undo {
		c, err = placement.Uncordon(ctx, db, o.Name)
	} else {
		c, err = placement.Cordon(ctx, db, o.Name, o.Reason, o.By)
	}
	if errors.Is(err, placement.ErrWorkerNotFound) {
		return usageError(fmt.Errorf("%w; nothing was changed", err))
	}
	if err != nil {
		return database.RedactError(err)
	}
	if o.Format == output.JSON || o.Format == output.YAML {
		if c.At != nil {
			t := c.At.UTC()
			c.At = &t
		}
		return output.Write(app.Out, o.Format, c)
	}
	name := output.Escape(c.Worker)
	switch {
	case o.Undo && c.Changed:
		fmt.Fprintf(app.Out, "worker %s uncordoned: it takes sensors again\n", name)
	case o.Undo:
		fmt.Fprintf(app.Out, "worker %s was not cordoned\n", name)
	default:
		verb := "cordoned"
		if !c.Changed {
			verb = "is already cordoned"
		}
		var why string
		if c.Reason != "" {
			why = fmt.Sprintf(" (%s)", output.Escape(c.Reason))
		}
		fmt.Fprintf(app.Out, "worker %s %s%s: it takes no new sensors and keeps the ones it holds\n", name, verb, why)
	}
	return nil
}
