package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/config"
	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/output"
)

func newConfigCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the resolved configuration",
	}
	cmd.AddCommand(offerFormats(&cobra.Command{
		Use:   "view",
		Short: "Print the configuration after file, environment and flags, passwords redacted",
		Long: `Print the configuration attunectl would use, after the config file
(--config, else $ATTUNE_CONFIG, else ./config.yaml when present), the
ATTUNE__SECTION__KEY environment variables and the flags. Every password is
replaced by xxxxx. Defaults that depend on the machine are shown resolved
(sensor.worker_name, sensor.host, embedded.data_dir). The sources used are
listed on stderr.`,
		Example: `  attunectl config view
  ATTUNE__SENSOR__HEARTBEAT_INTERVAL=10 attunectl config view
  attunectl -c /etc/attune/config.yaml config view -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			return runConfigView(app, f)
		},
	}, output.Formats{output.YAML, output.JSON}))
	return cmd
}

func runConfigView(app *App, f output.Format) error {
	r, err := app.Config.Resolved(config.ResolveOptions{DefaultDataDir: embeddedpg.DefaultDataDir})
	if err != nil {
		app.Log.Warn("config view: " + err.Error())
	}
	c := *r
	c.Database.URL = database.Redact(c.Database.URL)
	if app.Loaded.File != "" {
		fmt.Fprintf(app.Err, "# file: %s\n", app.Loaded.File)
	}
	for _, e := range app.Loaded.Env {
		fmt.Fprintf(app.Err, "# env:  %s\n", e)
	}
	return output.Write(app.Out, f, c)
}
