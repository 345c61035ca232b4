package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

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
// App's stdin. Every error is a usage error (exit 2): the input is wrong.
func readSensorManifest(app *App, path string) ([]sensors.Sensor, error) {
	var r io.Reader = app.In
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError(fmt.Errorf("reading manifest: %w: check the path given to -f", err))
		}
		defer f.Close()
		r, name = f, path
	}
	if r == nil {
		r = strings.NewReader("")
	}
	ss, err := sensors.ReadManifest(r)
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w; nothing was written", name, err))
	}
	return ss, nil
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
			return sensors.Refs(ctx, db.Pool, toComplete)
		})
		return filterCompletions(refs, args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}
