package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/runtimes"
)

// verifyResultHook, when set (by tests), sees every verification result
// before it is printed: golden tests zero the durations and the temporary
// directories so that the output is the same on every run.
var verifyResultHook func(*detect.Result)

// runtimeVerifyOptions are the options of `runtime verify`.
type runtimeVerifyOptions struct {
	Refs []string
	// File is a manifest to verify instead of the database ("-" for stdin).
	File    string
	Timeout time.Duration
	Format  output.Format
	Palette output.Palette
}

// Validate checks the timeout.
func (o *runtimeVerifyOptions) Validate() error {
	if o.Timeout < 0 {
		return usageErrorf("--timeout %s: must be positive", o.Timeout)
	}
	return nil
}

func newRuntimeVerifyCmd(app *App) *cobra.Command {
	o := &runtimeVerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [REF...]",
		Short: "Dry-run runtime detection on this host",
		Long: `Verify runtimes on this host exactly as ` + "`attunectl sensor run`" + ` does, and show
why each one is or is not available. Nothing is written.

Without arguments every sensor runtime of the database is verified (the set
` + "`sensor run`" + ` verifies); REF arguments verify those runtimes only, whatever their
type. With -f FILE the runtimes of a manifest are verified and no database is
used at all (REF arguments then select runtimes of the file).

Each runtime is available when it is always available, or when one of its
commands, tried by ascending priority, starts, exits with the expected code
and prints the pattern (stdout, then stderr). Commands run without a shell,
with a scrubbed environment (PATH, HOME, LANG, LC_*, TZ, TMPDIR and
sensor.passthrough_env), a timeout per command (--timeout, default
sensor.verification.timeout, 5s) that kills the whole process group, output
capped at sensor.verification.max_output_bytes, and only the binaries of
sensor.verification.allowed_binaries when that list is set.

This command always runs detection. ` + "`sensor run`" + ` skips it when
ATTUNE_SENSOR_RUNTIMES or sensor.capabilities.runtimes is set; a note on stderr
says so when either is set here.

Output (-o): table (default: RUNTIME, REF, AVAILABLE, VIA, VERSION, TIME,
REASON), wide (one line per command tried: resolved path, exit code, whether
the pattern matched, time, reason), json and yaml (the detection result, with
duration_ms fields).

Exit status: 0 when every runtime verified is available; 3 when at least one
is not (the table says why); 2 for bad input, such as an unknown REF or an
invalid manifest; 1 when the database cannot be read.`,
		Example: `  attunectl runtime verify
  attunectl runtime verify core.sensor.python core.sensor.nodejs -o wide
  attunectl runtime verify -f runtimes.yaml
  attunectl runtime verify --timeout 2s -o json | jq '.runtimes[] | select(.available | not)'`,
		ValidArgsFunction: completeRuntimeRefs(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			f, err := app.outputFormat(output.Table, output.Wide, output.JSON, output.YAML)
			if err != nil {
				return err
			}
			o.Refs, o.Format, o.Palette = args, f, app.palette(app.Out)
			return runRuntimeVerify(cmd.Context(), app, *o)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.File, "filename", "f", "", "verify the runtimes of this manifest instead of the database (- reads stdin)")
	fs.DurationVar(&o.Timeout, "timeout", 0, "per-command timeout (default sensor.verification.timeout, 5s)")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

func runRuntimeVerify(ctx context.Context, app *App, o runtimeVerifyOptions) error {
	rts, source, err := loadRuntimesToVerify(ctx, app, o)
	if err != nil {
		return err
	}
	noteDetectionOverride(app)
	res := verifyRuntimes(ctx, app, rts, o.Timeout)
	res.Source = source
	if len(rts) == 0 && (o.Format == output.Table || o.Format == output.Wide) {
		fmt.Fprintln(app.Err, "No sensor runtimes found.")
		return nil
	}
	if err := printVerify(app.Out, res, o.Format, o.Palette); err != nil {
		return err
	}
	if bad := res.Unavailable(); len(bad) > 0 {
		refs := make([]string, len(bad))
		for i, r := range bad {
			refs[i] = r.Ref
		}
		return conditionError(fmt.Errorf("%d of %d runtimes not available on this host: %s", len(bad), len(res.Runtimes), strings.Join(refs, ", ")))
	}
	return nil
}

// loadRuntimesToVerify reads the manifest (no database), or the requested
// runtimes, or every sensor runtime of the database.
func loadRuntimesToVerify(ctx context.Context, app *App, o runtimeVerifyOptions) ([]runtimes.Runtime, detect.Source, error) {
	if o.File != "" {
		rts, err := readManifestFile(app, o.File)
		if err != nil || len(o.Refs) == 0 {
			return rts, detect.SourceFile, err
		}
		var picked []runtimes.Runtime
		for _, r := range rts {
			for _, ref := range o.Refs {
				if strings.EqualFold(strings.TrimSpace(ref), r.Ref) {
					picked = append(picked, r)
					break
				}
			}
		}
		if missing := missingRefs(o.Refs, picked); len(missing) > 0 {
			return nil, "", usageErrorf("runtime %s not found in %s", strings.Join(missing, ", "), o.File)
		}
		return picked, detect.SourceFile, nil
	}
	db, err := app.connect(ctx, connectOptions{})
	if err != nil {
		return nil, "", err
	}
	defer db.Close()
	if len(o.Refs) == 0 {
		rts, err := runtimes.SensorRuntimes(ctx, db)
		return rts, detect.SourceDatabase, err
	}
	rts, err := runtimes.List(ctx, db, runtimes.Filter{Refs: o.Refs})
	if err != nil {
		return nil, "", err
	}
	if missing := missingRefs(o.Refs, rts); len(missing) > 0 {
		return nil, "", usageError(fmt.Errorf("runtime %s not found in schema %s: see `attunectl runtime list`", strings.Join(missing, ", "), db.Schema))
	}
	return rts, detect.SourceDatabase, nil
}

// noteDetectionOverride says on stderr when `sensor run` would not run
// detection on this host, because the environment or the configuration
// names the runtimes (the precedence of detect.Detect).
func noteDetectionOverride(app *App) {
	if names := detect.ParseList(app.Getenv(detect.EnvVar)); len(names) > 0 {
		fmt.Fprintf(app.Err, "note: %s is set (%s): `attunectl sensor run` would register these runtimes without detection; below is what detection finds\n", detect.EnvVar, strings.Join(names, ", "))
		return
	}
	if list, ok := app.Config.Sensor.CapabilityRuntimes(); ok {
		if names := detect.Normalize(list); len(names) > 0 {
			fmt.Fprintf(app.Err, "note: sensor.capabilities.runtimes is set (%s): `attunectl sensor run` would register these runtimes without detection; below is what detection finds\n", strings.Join(names, ", "))
		}
	}
}

// verifyRuntimes runs the detection engine on rts with the configuration's
// limits; timeout, when positive, overrides sensor.verification.timeout.
func verifyRuntimes(ctx context.Context, app *App, rts []runtimes.Runtime, timeout time.Duration) detect.Result {
	s := app.Config.Sensor
	opts := detect.Options{
		Timeout:         s.Verification.Timeout.D(),
		MaxOutput:       s.Verification.MaxOutputBytes,
		PassthroughEnv:  s.PassthroughEnv,
		AllowedBinaries: s.Verification.AllowedBinaries,
		Environ:         func() []string { return app.Environ },
	}
	if timeout > 0 {
		opts.Timeout = timeout
	}
	res := detect.Verify(ctx, rts, opts)
	if verifyResultHook != nil {
		verifyResultHook(&res)
	}
	return res
}

// printVerify writes a detection result in format f.
func printVerify(w io.Writer, res detect.Result, f output.Format, p output.Palette) error {
	switch f {
	case output.JSON:
		return output.WriteJSON(w, res)
	case output.YAML:
		return output.WriteYAML(w, res)
	case output.Wide:
		return printVerifyWide(w, res, p)
	}
	t := output.NewTable(w, "RUNTIME", "REF", "AVAILABLE", "VIA", "VERSION", "TIME", "REASON")
	for _, rr := range res.Runtimes {
		t.Append(rr.Name, rr.Ref, availableWord(p, rr.Available), rr.Via, rr.Version, output.Duration(rr.Duration), rr.Reason)
	}
	return t.Render()
}

// printVerifyWide prints one line per command outcome: the first line of a
// runtime carries its columns, the next ones only the command's.
func printVerifyWide(w io.Writer, res detect.Result, p output.Palette) error {
	t := output.NewTable(w, "RUNTIME", "REF", "AVAILABLE", "COMMAND", "PATH", "EXIT", "MATCHED", "VERSION", "TIME", "REASON")
	for _, rr := range res.Runtimes {
		head := []string{rr.Name, rr.Ref, availableWord(p, rr.Available)}
		if len(rr.Commands) == 0 {
			cmd := rr.Via
			if cmd == "" {
				cmd = "-"
			}
			t.Append(append(head, cmd, "", "", "", rr.Version, output.Duration(rr.Duration), rr.Reason)...)
			continue
		}
		for i, c := range rr.Commands {
			row := make([]string, len(head))
			if i == 0 {
				copy(row, head)
			}
			path, exit, matched := c.Path, "-", "-"
			if path == "" {
				path = "-"
			}
			if c.Ran {
				exit = strconv.Itoa(c.ExitCode)
			}
			if c.Pattern != "" && c.Ran {
				matched = "no"
				if c.Matched {
					matched = "yes"
				}
			}
			took := output.Duration(c.Duration)
			if c.Cached {
				took += " (shared)"
			}
			t.Append(append(row, c.CommandLine(), path, exit, matched, c.Version, took, c.Reason)...)
		}
	}
	return t.Render()
}

func availableWord(p output.Palette, ok bool) string {
	if ok {
		return p.Green("yes")
	}
	return p.Red("no")
}
