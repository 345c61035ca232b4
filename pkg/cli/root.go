package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/version"
)

// NewRootCommand builds the whole command tree around app.
func NewRootCommand(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "attunectl",
		Short: "Operate the sensor workers of an Attune automation platform",
		Long: `attunectl is the operator's tool for the sensor workers of an Attune
automation platform: it applies the schema, manages the runtime verification
metadata, dry-runs runtime detection on a host, runs the sensor worker itself,
and shows which workers are alive, which went silent, and cleans up after them.

With no database configured it uses an embedded local PostgreSQL, so that
everything can be tried with one command.`,
		Example: `  attunectl sensor run
  attunectl worker list --role sensor
  attunectl runtime verify
  attunectl --database-url postgres://attune@db:5432/attune migrate up`,
		Version:           version.String(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Every command honours -o or rejects it (exit 2), before anything runs.
			if _, err := app.outputFormat(cmd); err != nil {
				return err
			}
			if err := checkExclusive(cmd); err != nil {
				return err
			}
			return app.load(cmd)
		},
	}
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		// -o is a root flag: its help lists the formats of the command asked about.
		if f := root.PersistentFlags().Lookup("output"); f != nil && c.Runnable() {
			usage := f.Usage
			f.Usage = "output format: " + formatsOf(c).Join("|")
			if len(formatsOf(c)) == 1 {
				f.Usage += " (this command offers no machine format)"
			}
			defer func() { f.Usage = usage }()
		}
		defaultHelp(c, args)
	})
	root.SetVersionTemplate("attunectl {{.Version}}\n")
	root.SetIn(app.In)
	root.SetOut(app.Out)
	root.SetErr(app.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v (see `%s --help`)", err, c.CommandPath())
	})

	pf := root.PersistentFlags()
	pf.StringVarP(&app.Global.ConfigPath, "config", "c", "", "config file (default $ATTUNE_CONFIG, else ./config.yaml when present)")
	pf.StringVar(&app.Global.DatabaseURL, "database-url", "", "PostgreSQL URL (env ATTUNE__DATABASE__URL; empty: the embedded database)")
	pf.StringVar(&app.Global.Schema, "schema", "", `schema that holds attunectl's tables (env ATTUNE__DATABASE__SCHEMA, default "attune")`)
	pf.StringVarP(&app.Global.Output, "output", "o", "", "output format: table|wide|json|yaml (and name where offered)")
	pf.BoolVar(&app.Global.NoColor, "no-color", false, "never colour the output (also NO_COLOR)")
	pf.StringVar(&app.Global.LogLevel, "log-level", "", "log level: debug|info|warn|error (env ATTUNE__LOG__LEVEL, default info)")
	pf.StringVar(&app.Global.LogFormat, "log-format", "", "log format: text|json (env ATTUNE__LOG__FORMAT, default text)")
	bindConfig(pf, "database-url", "database.url")
	bindConfig(pf, "schema", "database.schema")
	bindConfig(pf, "log-level", "log.level")
	bindConfig(pf, "log-format", "log.format")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "wide", "json", "yaml", "name"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(
		newMigrateCmd(app),
		newConfigCmd(app),
		newEmbeddedCmd(app),
		newVersionCmd(app),
		newRuntimeCmd(app),
		newSensorCmd(app),
		newWorkerCmd(app),
		newEventCmd(app),
	)
	root.AddCommand(newTopicCmds()...)
	root.SetHelpCommand(newHelpCmd())
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			for _, sh := range c.Commands() {
				sh.Args = noArgs
			}
		}
	}
	rejectUnknownSubcommands(root)
	return root
}

// rejectUnknownSubcommands makes every command group (worker, migrate,
// completion, …) refuse an argument that is none of its subcommands, with
// cobra's suggestion, as bad input (exit 2); cobra itself prints the
// group's help and exits 0. A group without arguments still prints its help.
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		rejectUnknownSubcommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += ": did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageErrorf("%s (see `%s --help`)", msg, cmd.CommandPath())
	}
}

// Execute runs attunectl with args and returns the exit status. Errors are
// printed once, here, redacted.
func Execute(ctx context.Context, app *App, args []string) int {
	root := NewRootCommand(app)
	root.SetArgs(args)
	_, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitCode(err)
	if !silent(err) {
		fmt.Fprintf(app.Err, "Error: %s\n", output.EscapeText(database.Redact(err.Error())))
	}
	return code
}
