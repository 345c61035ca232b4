package cli

import "github.com/spf13/cobra"

func newEventCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "event",
		Aliases: []string{"events"},
		Short:   "Show the events sensors emitted",
		Long: `Show the rows of the event table: what sensors emitted, for which trigger,
written only while the emitting worker still held the sensor's lease (the
generation that wrote each is recorded).`,
		Example: `  attunectl event list --since 10m
  attunectl event list --sensor acme.disk_watch --follow`,
	}
	cmd.AddCommand(newEventListCmd(app))
	return cmd
}
