package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/output"
)

func newEmbeddedCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "embedded",
		Short: "Show, start or stop the embedded local PostgreSQL",
		Long: `With no database configured, attunectl runs on a local PostgreSQL that it
starts itself from the server binaries on this machine. The server listens on
a Unix socket only, keeps its data under the user's state directory
(embedded.data_dir), and stays running for the next invocation until stopped.`,
		Example: `  attunectl embedded status
  attunectl embedded stop`,
	}
	cmd.AddCommand(
		offerFormats(&cobra.Command{
			Use:   "status",
			Short: "Show whether the embedded server is running, and where",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				opts, err := app.embeddedOptions()
				if err != nil {
					return err
				}
				f, err := app.outputFormat(cmd)
				if err != nil {
					return err
				}
				return runEmbeddedStatus(app, opts, f)
			},
		}, output.Formats{output.Table, output.JSON, output.YAML}),
		&cobra.Command{
			Use:   "start",
			Short: "Start the embedded server (and migrate it) without running anything else",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runEmbeddedStart(cmd.Context(), app)
			},
		},
		newEmbeddedStopCmd(app),
	)
	return cmd
}

func newEmbeddedStopCmd(app *App) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the embedded server (its data is kept)",
		Long: `Stop the embedded server; its data is kept for the next start. While other
attunectl sessions are connected (a sensor worker, say) it refuses, names
their server pids and exits 2 without changing anything: stopping would cut
them off. --force stops it anyway.`,
		Example: `  attunectl embedded stop
  attunectl embedded stop --force`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := app.embeddedOptions()
			if err != nil {
				return err
			}
			return runEmbeddedStop(cmd.Context(), app, opts, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "stop even while attunectl clients are connected")
	return cmd
}

func runEmbeddedStatus(app *App, opts embeddedpg.Options, f output.Format) error {
	st, err := embeddedpg.StatusOf(opts)
	if err != nil {
		return err
	}
	if f != output.Table {
		return output.Write(app.Out, f, st)
	}
	state := "stopped"
	if st.Running {
		state = fmt.Sprintf("running (pid %d)", st.PID)
	} else if !st.Initialized {
		state = "not initialized (the first command that needs a database creates it)"
	}
	fmt.Fprintf(app.Out, "state:      %s\ndata dir:   %s\nsocket dir: %s\nport:       %d\nbinaries:   %s\n", state, st.DataDir, st.SocketDir, st.Port, st.BinDir)
	if st.Version != "" {
		fmt.Fprintf(app.Out, "version:    %s\n", st.Version)
	}
	if st.Running {
		fmt.Fprintf(app.Out, "user:       %s\ndatabase:   %s\npassword:   in %s (for TCP; the socket admits only this OS user)\n", st.User, st.Database, st.PassFile)
	}
	if st.Psql != "" {
		fmt.Fprintf(app.Out, "connect:    %s\n", st.Psql)
	}
	if st.Problem != "" {
		fmt.Fprintf(app.Out, "problem:    %s\n", st.Problem)
	}
	return nil
}

func runEmbeddedStart(ctx context.Context, app *App) error {
	if app.Config.Database.URL != "" {
		return usageErrorf("a database URL is configured, so the embedded server is not used (unset database.url to use it)")
	}
	db, err := app.connect(ctx, connectOptions{migrateEmbedded: true})
	if err != nil {
		return err
	}
	db.Close()
	fmt.Fprintln(app.Out, "embedded database is running")
	return nil
}

func runEmbeddedStop(ctx context.Context, app *App, opts embeddedpg.Options, force bool) error {
	st, err := embeddedpg.StatusOf(opts)
	if err != nil {
		return err
	}
	if !st.Running {
		fmt.Fprintln(app.Out, "embedded database is not running")
		return nil
	}
	clients, err := embeddedpg.Clients(ctx, opts, database.AppName)
	if err != nil {
		return fmt.Errorf("stopping the embedded database: %w", err)
	}
	if len(clients) > 0 && !force {
		pids := make([]string, len(clients))
		for i, c := range clients {
			pids[i] = strconv.Itoa(c.PID)
		}
		// Like worker prune without --yes: a refusal that needs the
		// operator's word, nothing changed, exit 2.
		return usageErrorf("%d attunectl session(s) are connected to the embedded database (server pids %s): stopping it would cut them off, and a sensor worker on it would stop heartbeating (stop them first, or pass --force; nothing was changed)",
			len(clients), strings.Join(pids, ", "))
	}
	if err := embeddedpg.StopDir(ctx, opts); err != nil {
		return fmt.Errorf("stopping the embedded database: %w", err)
	}
	fmt.Fprintln(app.Out, "embedded database stopped")
	return nil
}
