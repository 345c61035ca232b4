package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/runtimes"
)

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
REASON; TIME is how long its commands ran, never time spent waiting for a
free slot; a command two runtimes share runs once), wide (one line per command tried: resolved path, exit code, whether
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
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Refs, o.Format, o.Palette = args, f, app.palette()
			return runRuntimeVerify(cmd.Context(), app, *o)
		},
	}
	offerFormats(cmd, verifySpec(nil).Formats())
	fs := cmd.Flags()
	fs.StringVarP(&o.File, "filename", "f", "", "verify the runtimes of this manifest instead of the database (- reads stdin)")
	durationVar(fs, &o.Timeout, "timeout", 0, "per-command timeout (default sensor.verification.timeout, 5s)")
	addRunAsFlag(fs)
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

func runRuntimeVerify(ctx context.Context, app *App, o runtimeVerifyOptions) error {
	rts, source, err := loadRuntimesToVerify(ctx, app, o)
	if err != nil {
		return err
	}
	noteDetectionOverride(app)
	// A sandbox that cannot be set up (an unknown or forbidden run_as) is
	// refused before anything runs, with how to choose.
	sb, err := app.detectOptions().Sandbox()
	if err != nil {
		return usageError(err)
	}
	if err := app.checkRunAsIsNotTheServer(sb); err != nil {
		return err
	}
	res := verifyRuntimes(ctx, app, rts, o.Timeout)
	res.Source = source
	if len(rts) == 0 && (o.Format == output.Table || o.Format == output.Wide) {
		fmt.Fprintln(app.Err, "No sensor runtimes found.")
		return nil
	}
	if res.RunAs != nil && res.OtherUser && (o.Format == output.Table || o.Format == output.Wide) {
		// The results are another user's than attunectl's: say whose (JSON
		// and YAML always carry run_as).
		fmt.Fprintf(app.Err, "note: verification commands ran as %s\n", output.EscapeText(res.RunAs.String()))
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
				if runtimes.NormalizeRef(ref) == r.Ref {
					picked = append(picked, r)
					break
				}
			}
		}
		if missing := runtimes.MissingRefs(o.Refs, picked); len(missing) > 0 {
			return nil, "", usageError(runtimes.NotFoundInFile(missing, o.File))
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
	if missing := runtimes.MissingRefs(o.Refs, rts); len(missing) > 0 {
		return nil, "", usageError(runtimes.NotFoundInSchema(missing, db.Schema))
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
// limits (the options `sensor run` uses); timeout, when positive,
// overrides sensor.verification.timeout.
func verifyRuntimes(ctx context.Context, app *App, rts []runtimes.Runtime, timeout time.Duration) detect.Result {
	opts := app.detectOptions()
	if timeout > 0 {
		opts.Timeout = timeout
	}
	res := detect.Verify(ctx, rts, opts)
	if app.VerifyResultHook != nil {
		app.VerifyResultHook(&res)
	}
	return res
}

// verifyLine is one line of `runtime verify`: a runtime's result, and in
// -o wide one of the commands it tried (Cmd nil: it tried none). Only a
// runtime's first line carries its columns.
type verifyLine struct {
	R     *detect.RuntimeResult
	Cmd   *detect.CommandResult
	First bool
}

// verifySpec prints a detection result: a line per runtime (-o wide: per
// command tried); -o json and -o yaml are the whole result.
func verifySpec(res *detect.Result) output.Spec[verifyLine] {
	type col = output.Column[verifyLine]
	head := func(h string, cell func(*detect.RuntimeResult) string) col {
		return col{Header: h, Cell: func(l verifyLine) string {
			if !l.First {
				return ""
			}
			return cell(l.R)
		}}
	}
	// perCmd is a command's cell, or the runtime's when it tried none.
	perCmd := func(h string, rcell func(*detect.RuntimeResult) string, ccell func(*detect.CommandResult) string) col {
		return col{Header: h, Cell: func(l verifyLine) string {
			if l.Cmd == nil {
				return rcell(l.R)
			}
			return ccell(l.Cmd)
		}}
	}
	blank := func(*detect.RuntimeResult) string { return "" }
	runtime := head("RUNTIME", func(r *detect.RuntimeResult) string { return r.Name })
	ref := head("REF", func(r *detect.RuntimeResult) string { return r.Ref })
	available := col{Header: "AVAILABLE", Cell: func(l verifyLine) string {
		switch {
		case !l.First:
			return ""
		case l.R.Available:
			return "yes"
		}
		return "no"
	}, Color: func(l verifyLine) output.Color {
		if l.R.Available {
			return output.Green
		}
		return output.Red
	}}
	return output.Spec[verifyLine]{
		Columns: []col{runtime, ref, available,
			head("VIA", func(r *detect.RuntimeResult) string { return r.Via }),
			head("VERSION", func(r *detect.RuntimeResult) string { return r.Version }),
			head("TIME", func(r *detect.RuntimeResult) string { return output.Duration(r.Duration) }),
			head("REASON", func(r *detect.RuntimeResult) string { return r.Reason }),
		},
		Wide: []col{runtime, ref, available,
			perCmd("COMMAND", func(r *detect.RuntimeResult) string {
				if r.Via == "" {
					return "-"
				}
				return r.Via
			}, (*detect.CommandResult).CommandLine),
			perCmd("PATH", blank, func(c *detect.CommandResult) string {
				if c.Path == "" {
					return "-"
				}
				return c.Path
			}),
			perCmd("EXIT", blank, func(c *detect.CommandResult) string {
				if c.Ran {
					return strconv.Itoa(c.ExitCode)
				}
				return "-"
			}),
			perCmd("MATCHED", blank, func(c *detect.CommandResult) string {
				switch {
				case c.Pattern == "" || !c.Ran:
					return "-"
				case c.Matched:
					return "yes"
				}
				return "no"
			}),
			perCmd("VERSION", func(r *detect.RuntimeResult) string { return r.Version }, func(c *detect.CommandResult) string { return c.Version }),
			perCmd("TIME", func(r *detect.RuntimeResult) string { return output.Duration(r.Duration) }, func(c *detect.CommandResult) string {
				if c.Cached {
					return output.Duration(c.Duration) + " (shared)"
				}
				return output.Duration(c.Duration)
			}),
			perCmd("REASON", func(r *detect.RuntimeResult) string { return r.Reason }, func(c *detect.CommandResult) string { return c.Reason }),
		},
		WideLines: func(l verifyLine) []verifyLine {
			if len(l.R.Commands) == 0 {
				return []verifyLine{l}
			}
			lines := make([]verifyLine, len(l.R.Commands))
			for i := range l.R.Commands {
				lines[i] = verifyLine{R: l.R, Cmd: &l.R.Commands[i], First: i == 0}
			}
			return lines
		},
		Encode: func(w io.Writer, f output.Format, _ []verifyLine) error { return output.Write(w, f, res) },
	}
}

// printVerify writes a detection result in format f.
func printVerify(w io.Writer, res detect.Result, f output.Format, p output.Palette) error {
	pr := verifySpec(&res).NewPrinter(w, f, output.PrinterOptions{Palette: p})
	for i := range res.Runtimes {
		if err := pr.Write(verifyLine{R: &res.Runtimes[i], First: true}); err != nil {
			return err
		}
	}
	return pr.Flush()
}

// addRunAsFlag adds --run-as, bound to sensor.run_as.
func addRunAsFlag(fs *pflag.FlagSet) {
	fs.String("run-as", "", "`user` that commands from the database run as (sensor.run_as); required as root: an unprivileged user such as nobody, or root on purpose")
	bindConfig(fs, "run-as", "sensor.run_as")
}
