// Package cli holds attunectl's cobra commands, one file per noun. Each
// command fills an options struct from its flags, validates it, and calls a
// run function that takes its writers, configuration and database from the
// App, so that tests can run commands without a terminal.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attune-automation/attunectl/pkg/config"
	"github.com/attune-automation/attunectl/pkg/database"
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

	// embeddedNote is printed once per process when the embedded database is used.
	embeddedNoted bool
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
	for i := len(a.Environ) - 1; i >= 0; i-- {
		kv := a.Environ[i]
		if len(kv) > len(name) && kv[len(name)] == '=' && kv[:len(name)] == name {
			return kv[len(name)+1:]
		}
	}
	return ""
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
	a.Config, a.Loaded = cfg, loaded
	a.Log = newLogger(a.Err, cfg.Log)
	return nil
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redactAttr keeps passwords out of every log line, whatever logged them.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(database.Redact(a.Value.String()))
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.StringValue(database.Redact(err.Error()))
		}
	}
	return a
}

// palette returns the colours for w: on a terminal only, never with
// --no-color or NO_COLOR.
func (a *App) palette(w io.Writer) output.Palette {
	return output.Palette{On: output.ColorEnabled(w, a.Global.NoColor)}
}

// outputFormat parses -o against the formats a command offers.
func (a *App) outputFormat(allowed ...output.Format) (output.Format, error) {
	f, err := output.ParseFormat(a.Global.Output, allowed...)
	if err != nil {
		return "", usageError(err)
	}
	return f, nil
}

// connectOptions says how a command wants its database.
type connectOptions struct {
	// skipSchemaCheck: migrate commands work on an unmigrated schema.
	skipSchemaCheck bool
	// noStatementTimeout: migrations may take longer than a query.
	noStatementTimeout bool
}

// connect opens the configured database, or the embedded one when none is
// configured (migrating it on first use).
func (a *App) connect(ctx context.Context, co connectOptions) (*database.DB, error) {
	c := a.Config.Database
	opts := database.Options{
		URL:            c.URL,
		Schema:         c.Schema,
		ConnectTimeout: c.ConnectTimeout.D(),
		MaxConns:       int32(c.MaxConnections),
	}
	if !co.noStatementTimeout {
		opts.StatementTimeout = c.StatementTimeout.D()
	}
	embedded := opts.URL == ""
	if embedded {
		url, err := a.startEmbedded(ctx)
		if err != nil {
			return nil, err
		}
		opts.URL = url
	}
	db, err := database.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	if embedded && !co.skipSchemaCheck && db.RequireSchema() != nil {
		if err := database.MigrateUp(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("migrating the embedded database: %w", err)
		}
		a.Log.Info("migrated the embedded database", "schema", db.Schema)
	}
	if !co.skipSchemaCheck {
		if err := db.RequireSchema(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}
