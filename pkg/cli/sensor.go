package cli

import "github.com/spf13/cobra"

func newSensorCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sensor",
		Short: "Run the sensor worker of this host",
	}
	cmd.AddCommand(newSensorRunCmd(app))
	return cmd
}
