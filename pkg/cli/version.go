package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/version"
)

func newVersionCmd(app *App) *cobra.Command {
	return offerFormats(&cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version of this binary",
		Args:    noArgs,
		Example: "  attunectl version\n  attunectl version -o json",
		// version needs no configuration: it works even when the config is broken.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			info := version.Get()
			if f != output.Table {
				return output.Write(app.Out, f, info)
			}
			commit := info.Commit
			if commit == "" {
				commit = "unknown"
			}
			fmt.Fprintf(app.Out, "attunectl %s\ncommit:   %s\n", info.Version, commit)
			if info.Date != "" {
				fmt.Fprintf(app.Out, "built:    %s\n", info.Date)
			}
			fmt.Fprintf(app.Out, "go:       %s %s\n", info.GoVersion, info.Platform)
			return nil
		},
	}, output.Formats{output.Table, output.JSON, output.YAML})
}
