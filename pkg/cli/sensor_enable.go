package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/events"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/sensors"
)

// sensorEnableOptions are the options of `sensor enable` and `sensor disable`.
type sensorEnableOptions struct {
	Refs    []string
	Enabled bool
	Format  output.Format
}

func newSensorEnableCmd(app *App) *cobra.Command {
	o := &sensorEnableOptions{Enabled: true}
	cmd := &cobra.Command{
		Use:   "enable REF...",
		Short: "Enable sensors, and clear their quarantine (all of them or none)",
		Long: `Enable the sensors with these refs, in one transaction: a worker that fits
claims each at its next tick. When a ref does not exist nothing is changed and
the exit status is 2, naming the missing refs.

Enabling also clears a sensor's quarantine and its count of consecutive
failures (they are kept on the sensor's workload, whoever owns it), so a
quarantined sensor starts again at once; the output says when it did.

Output (-o): table (default: one line per sensor), json and yaml ({enabled:
[refs], quarantine_cleared: N}), name (refs).`,
		Example: `  attunectl sensor enable acme.disk_watch
  attunectl sensor list --state quarantined -o name | xargs attunectl sensor enable`,
		Args:              minArgs(1),
		ValidArgsFunction: completeSensorRefs(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSensorEnableCmd(cmd, app, o, args)
		},
	}
	return offerFormats(cmd, output.Formats{output.Table, output.JSON, output.YAML, output.Name})
}

func newSensorDisableCmd(app *App) *cobra.Command {
	o := &sensorEnableOptions{Enabled: false}
	cmd := &cobra.Command{
		Use:   "disable REF...",
		Short: "Disable sensors: their owners stop them (all of them or none)",
		Long: `Disable the sensors with these refs, in one transaction: the worker that
owns each stops it and releases it at its next tick, and no worker claims it
until it is enabled again. When a ref does not exist nothing is changed and
the exit status is 2, naming the missing refs.

Output (-o): table (default: one line per sensor), json and yaml ({disabled:
[refs]}), name (refs).`,
		Example: `  attunectl sensor disable acme.disk_watch
  attunectl sensor disable acme.disk_watch acme.heartbeat -o name`,
		Args:              minArgs(1),
		ValidArgsFunction: completeSensorRefs(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSensorEnableCmd(cmd, app, o, args)
		},
	}
	return offerFormats(cmd, output.Formats{output.Table, output.JSON, output.YAML, output.Name})
}

func runSensorEnableCmd(cmd *cobra.Command, app *App, o *sensorEnableOptions, args []string) error {
	f, err := app.outputFormat(cmd)
	if err != nil {
		return err
	}
	o.Refs, o.Format = args, f
	return withDB(cmd.Context(), app, func(db *database.DB) error {
		return runSensorEnable(cmd.Context(), app, db, *o)
	})
}

// runSensorEnable enables or disables o.Refs; enabling also clears their
// quarantine.
func runSensorEnable(ctx context.Context, app *App, db *database.DB, o sensorEnableOptions) error {
	verb := "disabled"
	if o.Enabled {
		verb = "enabled"
	}
	done, err := sensors.SetEnabled(ctx, db, o.Refs, o.Enabled)
	if errors.Is(err, sensors.ErrNotFound) {
		return usageError(fmt.Errorf("%w; nothing was changed", err))
	}
	if errors.Is(err, sensors.ErrManaged) {
		return usageError(err)
	}
	if err != nil {
		return database.RedactError(err)
	}
	var cleared int64
	if o.Enabled {
		ids, err := sensors.IDs(ctx, db, done)
		if err != nil {
			return database.RedactError(err)
		}
		list := make([]int64, 0, len(ids))
		for _, id := range ids {
			list = append(list, id)
		}
		if cleared, err = events.ClearQuarantine(ctx, db, list); err != nil {
			return fmt.Errorf("sensors %s, but %w", verb, database.RedactError(err))
		}
	}
	switch o.Format {
	case output.JSON, output.YAML:
		if o.Enabled {
			return output.Write(app.Out, o.Format, struct {
				Enabled           []string `json:"enabled"`
				QuarantineCleared int64    `json:"quarantine_cleared"`
			}{done, cleared})
		}
		return output.Write(app.Out, o.Format, map[string][]string{"disabled": done})
	}
	for _, ref := range done {
		if o.Format == output.Name {
			fmt.Fprintln(app.Out, output.Escape(ref))
		} else {
			fmt.Fprintf(app.Out, "sensor %s %s\n", output.Escape(ref), verb)
		}
	}
	if cleared > 0 && o.Format != output.Name {
		what := fmt.Sprintf("%d sensors: they start", cleared)
		if cleared == 1 {
			what = "one sensor: it starts"
		}
		fmt.Fprintf(app.Out, "cleared the quarantine and failure count of %s again at once\n", what)
	}
	return nil
}
