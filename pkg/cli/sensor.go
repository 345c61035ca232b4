package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/sensors"
)

func newSensorCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sensor",
		Aliases: []string{"sensors"},
		Short:   "Define sensors, see where they run, and run the sensor worker of this host",
		Long: `A sensor (ref pack.name) names a runtime, an entrypoint and the triggers it
emits; sensor workers (` + "`attunectl sensor run`" + `) that advertise the runtime
claim it, one owner at a time. ` + "`sensor add -f`" + ` writes definitions,
` + "`sensor list`" + ` shows each sensor's derived state and owner, ` + "`sensor enable`" + `
and ` + "`sensor disable`" + ` switch sensors on and off.`,
		Example: `  attunectl sensor add -f sensors.yaml
  attunectl sensor list
  attunectl sensor list --state unschedulable -o wide
  attunectl sensor disable acme.disk_watch
  attunectl sensor run`,
	}
	cmd.AddCommand(
		newSensorAddCmd(app),
		newSensorListCmd(app),
		newSensorEnableCmd(app),
		newSensorDisableCmd(app),
		newSensorRunCmd(app),
	)
	return cmd
}

// readSensorManifest reads and validates a sensor manifest; "-" is the
// App's stdin. It returns the sensors as far as they could be read with a
// *sensors.ValidationError, so that `sensor add` can add the problems only
// the database can tell; the caller words the error (sensorManifestError).
func readSensorManifest(app *App, path string) ([]sensors.Sensor, error) {
	data, err := readManifestBytes(app, path, sensors.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	return sensors.ParseManifestFile(path, data)
}

// sensorManifestError words a manifest's problems as bad input (exit 2).
func sensorManifestError(path string, err error) error {
	if path == "-" {
		path = "stdin"
	}
	return usageError(fmt.Errorf("%s: %w; nothing was written", path, err))
}

// completeSensorRefs completes sensor refs from the sensor table, leaving
// out those already on the line; like the other completions it asks the
// database for at most completionTimeout and completes nothing on failure.
func completeSensorRefs(app *App) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if err := prepareCompletion(cmd, app); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		refs := completionQuery(cmd, app, func(ctx context.Context, db *database.DB) ([]string, error) {
			return sensors.Refs(ctx, db, toComplete)
		})
		return filterCompletions(refs, args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}
