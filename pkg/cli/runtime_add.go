package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/spf13/cobra"
)

// runtimeAddOptions are the options of `runtime add`.
type runtimeAddOptions struct {
	// File is a manifest path, "-" for stdin, or "" for a runtime from Flags.
	File    string
	Flags   runtimeFlags
	Update  bool
	DryRun  bool
	Timeout time.Duration
	Format  output.Format
	Palette output.Palette
}

// Validate checks what can be checked before reading the manifest.
func (o *runtimeAddOptions) Validate() error {
	if o.File == "" && o.Flags.empty() {
		return usageErrorf("nothing to add: give --ref, --name and --command (or --always-available), or a manifest with -f FILE (see `attunectl runtime add --help`)")
	}
	if o.Timeout < 0 {
		return usageErrorf("--timeout %s: must be positive", o.Timeout)
	}
	if o.Timeout > 0 && !o.DryRun {
		return usageErrorf("--timeout applies to --dry-run only: add --dry-run, or drop --timeout")
	}
	return nil
}

// runtimeFlagNames are the flags that describe a runtime; each excludes -f.
var runtimeFlagNames = []string{"ref", "name", "type", "description", "pack-ref", "alias", "always-available", "command", "pattern", "exit-code", "priority"}

func newRuntimeAddCmd(app *App) *cobra.Command {
	o := &runtimeAddOptions{}
	cmd := &cobra.Command{
		Use:   "add [flags] (--ref REF --name NAME --command CMD… | -f FILE)",
		Short: "Add runtimes with their verification metadata, from flags or a manifest",
		Long: `Add one runtime described by flags, or every runtime of a manifest (-f FILE,
YAML or JSON; one runtime object, a list of them, or several YAML documents;
-f - reads stdin). ` + "`attunectl runtime --help`" + ` shows the manifest format.

Everything is validated before anything is written: refs lower case and
dotted, names non-empty, commands present unless always available, binaries a
bare name or an absolute path without whitespace or shell characters,
exit codes 0-255, patterns valid Go regular expressions, no unknown keys. Every
problem is reported with its path (runtimes[0].verification.commands[1].pattern,
or the flag) and the exit status is 2 with nothing written. The runtimes of a
file are written in one transaction: all of them or none.

A ref that already exists is an error (exit 2) unless --update is given;
--update replaces the whole runtime (it is not a patch), keeping the keys of
its distributions column other than verification.

From flags:
  --command 'python3 --version'  is split on blanks into the binary and its
      arguments, without a shell: quote an argument that holds blanks
      ('-c "import sys"'); unquoted shell characters (; & | < > $ ` + "`" + ` ( ) \ * ? ~
      { } [ ] #) are refused. Repeat --command for fallbacks: they get
      priorities 1, 2, … in the order given.
  --pattern, --exit-code, --priority  given once apply to every --command;
      given once per --command they pair with the commands in order.
  A sensor runtime needs --command or --always-available.

--dry-run validates, checks the database for existing refs, and verifies the
runtimes on this host (the ` + "`runtime verify`" + ` table) without writing anything. It
exits 0 when the add would succeed, whether the runtimes are available here or
not: use ` + "`attunectl runtime verify -f FILE`" + ` to test availability.

Output (-o): table (default: one line per runtime), json and yaml
({created, updated} refs, plus the verification with --dry-run), name (refs).`,
		Example: `  # A runtime with two commands tried in order, one pattern for both
  attunectl runtime add --ref acme.sensor.python --name "Python (acme)" \
    --command 'python3 --version' --command 'python --version' --pattern 'Python 3\.'

  # A runtime that needs no check
  attunectl runtime add --ref acme.sensor.builtin --name "Acme Built-in" --always-available

  # From a manifest; replace the runtimes that exist already
  attunectl runtime add -f runtimes.yaml --update

  # Check a manifest and see how this host would verify it, without writing
  attunectl runtime add -f runtimes.yaml --dry-run

  # Copy every runtime from one database to another
  attunectl runtime list -o yaml | attunectl --database-url postgres://attune@db2/attune runtime add -f - --update`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			// cobra checks flag groups after PreRunE and returns a plain
			// error; checking here makes a conflict a usage error (exit 2).
			return usageError(cmd.ValidateFlagGroups())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Format, o.Palette = f, app.palette()
			// Nothing touches the database before the input is known to be valid.
			rts, err := o.load(app)
			if err != nil {
				return err
			}
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runRuntimeAdd(cmd.Context(), app, db, rts, *o)
			})
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	offerFormats(cmd, output.Formats{output.Table, output.Wide, output.JSON, output.YAML, output.Name})
	fs := cmd.Flags()
	fs.StringVarP(&o.File, "filename", "f", "", "manifest to add (YAML or JSON; - reads stdin)")
	fs.StringVar(&o.Flags.Ref, "ref", "", "runtime ref, lower case and dotted (acme.sensor.ruby)")
	fs.StringVar(&o.Flags.Name, "name", "", "display name; sensor workers report lower(name)")
	fs.StringVar(&o.Flags.Type, "type", runtimes.TypeSensor, "runtime type: sensor or action")
	fs.StringVar(&o.Flags.Description, "description", "", "description")
	fs.StringVar(&o.Flags.PackRef, "pack-ref", "", "pack the runtime belongs to (core)")
	fs.StringSliceVar(&o.Flags.Aliases, "alias", nil, "alias (repeatable or comma-separated)")
	fs.BoolVar(&o.Flags.AlwaysAvailable, "always-available", false, "available on every host without a check")
	fs.StringArrayVar(&o.Flags.Commands, "command", nil, "verification command line, split without a shell (repeatable, in priority order)")
	fs.StringArrayVar(&o.Flags.Patterns, "pattern", nil, "Go regular expression the command's stdout+stderr must match (once for all commands, or once per --command)")
	fs.IntSliceVar(&o.Flags.ExitCodes, "exit-code", nil, "expected exit status, default 0 (once for all commands, or once per --command)")
	fs.IntSliceVar(&o.Flags.Priorities, "priority", nil, "priority, lower first (default 1, 2, … in the order of --command; once for all, or once per --command)")
	fs.BoolVar(&o.Update, "update", false, "replace runtimes whose ref exists already")
	fs.BoolVar(&o.DryRun, "dry-run", false, "validate and verify on this host; write nothing")
	durationVar(fs, &o.Timeout, "timeout", 0, "with --dry-run: per-command timeout (default sensor.verification.timeout, 5s)")
	for _, name := range runtimeFlagNames {
		markExclusive(cmd, "filename", name)
	}
	markExclusive(cmd, "always-available", "command")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{runtimes.TypeSensor, runtimes.TypeAction}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// load reads the manifest, or builds the runtime the flags describe;
// either way validated.
func (o *runtimeAddOptions) load(app *App) ([]runtimes.Runtime, error) {
	if o.File != "" {
		return readManifestFile(app, o.File)
	}
	r, err := o.Flags.runtime()
	if err != nil {
		return nil, err
	}
	return []runtimes.Runtime{r}, nil
}

// runRuntimeAdd checks the valid runtimes rts against db, then verifies
// them (--dry-run) or writes them in one transaction.
func runRuntimeAdd(ctx context.Context, app *App, db *database.DB, rts []runtimes.Runtime, o runtimeAddOptions) error {
	// Name every existing ref at once; Add also refuses them, atomically,
	// should one appear in the meantime.
	existing, err := existingRefs(ctx, db, runtimes.Refs(rts))
	if err != nil {
		return err
	}
	if len(existing) > 0 && !o.Update {
		return usageError(existsError(existing))
	}
	if o.DryRun {
		return runtimeAddDryRun(ctx, app, o, rts, existing)
	}
	res, err := runtimes.Add(ctx, db, rts, o.Update)
	var ve *runtimes.ValidationError
	switch {
	case errors.As(err, &ve), errors.Is(err, runtimes.ErrExists), errors.Is(err, runtimes.ErrPlatformOwned):
		return usageError(err)
	case err != nil:
		return err
	}
	rep := addReport{Created: res.Created, Updated: res.Updated}
	if rep.Created == nil {
		rep.Created = []string{}
	}
	if rep.Updated == nil {
		rep.Updated = []string{}
	}
	return printAddResult(app.Out, rts, rep, o.Format)
}

// addReport is what `runtime add -o json|yaml` prints.
type addReport struct {
	DryRun  bool     `json:"dry_run"`
	Created []string `json:"created"`
	Updated []string `json:"updated"`
	// Verification is the dry run's verification on this host.
	Verification *detect.Result `json:"verification,omitempty"`
}

func runtimeAddDryRun(ctx context.Context, app *App, o runtimeAddOptions, rts []runtimes.Runtime, existing []string) error {
	res := verifyRuntimes(ctx, app, rts, o.Timeout)
	res.Source = detect.SourceFile
	rep := addReport{DryRun: true, Created: []string{}, Updated: []string{}, Verification: &res}
	for _, r := range rts {
		if slices.Contains(existing, r.Ref) {
			rep.Updated = append(rep.Updated, r.Ref)
		} else {
			rep.Created = append(rep.Created, r.Ref)
		}
	}
	switch o.Format {
	case output.JSON, output.YAML:
		return output.Write(app.Out, o.Format, rep)
	case output.Name:
		return printAddResult(app.Out, rts, rep, o.Format)
	}
	if err := printVerify(app.Out, res, o.Format, o.Palette); err != nil {
		return err
	}
	var parts []string
	if len(rep.Created) > 0 {
		parts = append(parts, "would create "+strings.Join(rep.Created, ", "))
	}
	if len(rep.Updated) > 0 {
		parts = append(parts, "would update "+strings.Join(rep.Updated, ", "))
	}
	fmt.Fprintf(app.Err, "dry run: %s; nothing was written\n", strings.Join(parts, "; "))
	return nil
}

func printAddResult(w io.Writer, rts []runtimes.Runtime, rep addReport, f output.Format) error {
	if f == output.JSON || f == output.YAML {
		return output.Write(w, f, rep)
	}
	for _, r := range rts {
		verb := "created"
		if slices.Contains(rep.Updated, r.Ref) {
			verb = "updated"
		}
		if f == output.Name {
			fmt.Fprintln(w, output.Escape(r.Ref))
		} else {
			fmt.Fprintf(w, "runtime %s %s\n", output.Escape(r.Ref), verb)
		}
	}
	return nil
}

// existingRefs returns which of refs are in the runtime table.
func existingRefs(ctx context.Context, db *database.DB, refs []string) ([]string, error) {
	rts, err := runtimes.List(ctx, db, runtimes.Filter{Refs: refs})
	if err != nil {
		return nil, fmt.Errorf("checking for existing runtimes: %w", err)
	}
	return runtimes.Refs(rts), nil
}

func existsError(refs []string) error {
	if len(refs) == 1 {
		return &runtimes.ExistsError{Ref: refs[0]}
	}
	return fmt.Errorf("runtimes %s already exist: pass --update to replace them (nothing was written)", strings.Join(refs, ", "))
}
