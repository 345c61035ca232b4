package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/spf13/cobra"
)

// runtimeRemoveOptions are the options of `runtime remove`.
type runtimeRemoveOptions struct {
	Refs   []string
	Format output.Format
}

func newRuntimeRemoveCmd(app *App) *cobra.Command {
	o := &runtimeRemoveOptions{}
	cmd := &cobra.Command{
		Use:     "remove REF...",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove runtimes (all of them or none)",
		Long: `Remove the runtimes with these refs, in one transaction. When a ref does not
exist nothing is removed and the exit status is 2, naming the missing refs.

Workers that point at a removed runtime (worker.runtime) keep their rows: the
reference is set to NULL. Sensor workers stop reporting a removed sensor
runtime at their next verification.

Output (-o): table (default: one line per runtime), json and yaml
({removed: [refs]}), name (refs).`,
		Example: `  attunectl runtime remove acme.sensor.ruby
  attunectl runtime remove acme.sensor.ruby acme.sensor.java -o name`,
		Args:              minArgs(1),
		ValidArgsFunction: completeRuntimeRefs(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Refs, o.Format = args, f
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runRuntimeRemove(cmd.Context(), app, db, *o)
			})
		},
	}
	return offerFormats(cmd, output.Formats{output.Table, output.JSON, output.YAML, output.Name})
}

func runRuntimeRemove(ctx context.Context, app *App, db *database.DB, o runtimeRemoveOptions) error {
	removed, err := runtimes.Remove(ctx, db, o.Refs)
	if errors.Is(err, runtimes.ErrNotFound) {
		return usageError(fmt.Errorf("%w; nothing was removed", err))
	}
	if errors.Is(err, runtimes.ErrPlatformOwned) {
		return usageError(err)
	}
	if err != nil {
		return err
	}
	if o.Format == output.JSON || o.Format == output.YAML {
		return output.Write(app.Out, o.Format, map[string][]string{"removed": removed})
	}
	for _, ref := range removed {
		if o.Format == output.Name {
			fmt.Fprintln(app.Out, output.Escape(ref))
		} else {
			fmt.Fprintf(app.Out, "runtime %s removed\n", output.Escape(ref))
		}
	}
	return nil
}
