// Package cli holds attunectl's cobra commands, one file per noun. Each
// command fills an options struct from its flags, validates it, and calls a
// run function that takes its writers, configuration and database from the
// App, so that tests can run commands without a terminal.
package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attune-automation/attunectl/pkg/config"
	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/output"
)

// configKeyAnnotation on a flag names the configuration key the flag sets, so
// that flags, environment variables and the file meet in one Config.
const configKeyAnnotation = "attunectl/config-key"

// App is what every command shares: its streams, environment, the global
// flags, and — after PersistentPreRunE — the loaded configuration and logger.
type App struct {
	In      io.Reader
	Out     io.Writer
	Err     io.Writer
	Environ []string
	// Now is the clock used for ages and staleness shown to the operator.
	Now func() time.Time

	Global GlobalOptions
	Config *config.Config
	Loaded config.Loaded
	Log    *slog.Logger

	// VerifyResultHook, when set (by tests), sees every verification result
	// before it is printed: golden tests zero the durations and the
	// temporary directories so that the output is the same on every run.
	VerifyResultHook func(*detect.Result)

	// Terminal overrides for the streams (gh's SetStdoutTTY): nil asks the
	// stream itself.
	stdinTTY, stdoutTTY, stderrTTY *bool

	// embeddedNote is printed once per process when the embedded database is used.
	embeddedNoted bool
}

// IsStdinTTY reports whether stdin is a terminal (so a command may ask).
func (a *App) IsStdinTTY() bool { return isTTY(a.stdinTTY, a.In) }

// IsStdoutTTY reports whether stdout is a terminal (colour, screen redraws).
func (a *App) IsStdoutTTY() bool { return isTTY(a.stdoutTTY, a.Out) }

// IsStderrTTY reports whether stderr is a terminal (prompts, progress).
func (a *App) IsStderrTTY() bool { return isTTY(a.stderrTTY, a.Err) }

func isTTY(override *bool, stream any) bool {
	if override != nil {
		return *override
	}
	return output.IsTerminal(stream)
}

// GlobalOptions are the root command's persistent flags.
type GlobalOptions struct {
	ConfigPath  string
	DatabaseURL string
	Schema      string
	Output      string
	NoColor     bool
	LogLevel    string
	LogFormat   string
}

// NewApp returns an App wired to the process's streams and environment.
func NewApp() *App {
	return &App{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Environ: os.Environ(), Now: time.Now}
}

// Getenv looks a variable up in the App's environment.
func (a *App) Getenv(name string) string {
	v, _ := a.LookupEnv(name)
	return v
}

// LookupEnv looks a variable up in the App's environment and says whether
// it is set (NO_COLOR counts when set to anything, even empty).
func (a *App) LookupEnv(name string) (string, bool) {
	for i := len(a.Environ) - 1; i >= 0; i-- {
		kv := a.Environ[i]
		if len(kv) > len(name) && kv[len(name)] == '=' && kv[:len(name)] == name {
			return kv[len(name)+1:], true
		}
	}
	return "", false
}

// bindConfig marks a flag as setting a configuration key.
func bindConfig(fs *pflag.FlagSet, flag, key string) {
	if err := fs.SetAnnotation(flag, configKeyAnnotation, []string{key}); err != nil {
		panic(err) // a programming error: the flag does not exist
	}
}

// load reads the configuration with the flags that cmd's user set.
func (a *App) load(cmd *cobra.Command) error {
	var flags []config.Override
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if keys := f.Annotations[configKeyAnnotation]; len(keys) == 1 {
			flags = append(flags, config.Override{Key: keys[0], Value: f.Value.String(), Source: "--" + f.Name})
		}
	})
	cfg, loaded, err := config.Load(config.LoadOptions{Path: a.Global.ConfigPath, Environ: a.Environ, Flags: flags})
	if err != nil {
		return usageError(database.RedactError(err))
	}
	// Every password of the configured URL is masked from here on, in
	// every error and log line, however the URL spells it.
	database.RememberSecrets(cfg.Database.URL)
	a.Config, a.Loaded = cfg, loaded
	a.Log = newLogger(a.Err, cfg.Log)
	for _, w := range loaded.Warnings {
		a.Log.Warn(w)
	}
	return nil
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: database.RedactAttr}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// palette returns the colours for stdout: on a terminal only, never with
// --no-color, NO_COLOR, or TERM=dumb (from the App's environment).
func (a *App) palette() output.Palette {
	return output.Palette{On: output.ColorEnabled(a.IsStdoutTTY(), a.Global.NoColor, a.LookupEnv)}
}

// stderrPalette is palette for stderr (a prompt's listing).
func (a *App) stderrPalette() output.Palette {
	return output.Palette{On: output.ColorEnabled(a.IsStderrTTY(), a.Global.NoColor, a.LookupEnv)}
}

// formatsAnnotation holds the output formats a command offers, "|"-separated.
const formatsAnnotation = "attunectl/output-formats"

// offerFormats declares the output formats cmd offers (its printer's
// Spec.Formats(), usually), the first being the default. They are checked
// against -o before the command runs, listed in its --help and in the
// error for a format it does not offer. A command that declares none
// prints no machine format: any -o but table is bad input (exit 2).
func offerFormats(cmd *cobra.Command, fs output.Formats) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[formatsAnnotation] = fs.Join("|")
	return cmd
}

// formatsOf returns the output formats cmd offers.
func formatsOf(cmd *cobra.Command) output.Formats {
	s, ok := cmd.Annotations[formatsAnnotation]
	if !ok {
		return output.Formats{output.Table}
	}
	var fs output.Formats
	for _, f := range strings.Split(s, "|") {
		fs = append(fs, output.Format(f))
	}
	return fs
}

// outputFormat parses -o against the formats cmd offers; a format it does
// not offer is bad input (exit 2) that lists those it does.
func (a *App) outputFormat(cmd *cobra.Command) (output.Format, error) {
	f, err := formatsOf(cmd).Parse(a.Global.Output)
	if err != nil {
		return "", usageError(err)
	}
	return f, nil
}

// statementTimeout is database.statement_timeout, for messages.
func (a *App) statementTimeout() time.Duration {
	if a == nil || a.Config == nil {
		return 0
	}
	return a.Config.Database.StatementTimeout.D()
}

// confirm asks on stderr and reads the answer from stdin: only y or yes
// (any case) agrees.
func confirm(app *App, prompt string) (bool, error) {
	fmt.Fprint(app.Err, prompt)
	line, err := bufio.NewReader(app.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
