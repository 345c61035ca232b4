package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/runtimes"
)

func init() { extraCommands = append(extraCommands, newRuntimeCmd) }

func newRuntimeCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "runtime",
		Aliases: []string{"runtimes"},
		Short:   "Add, list, verify and remove runtimes and their verification metadata",
		Long: `A runtime (core.sensor.python, core.sensor.nodejs, …) says what a sensor
needs on a host, and its verification metadata says how a host finds out
whether it has it: "always available", or commands such as ` + "`python3 --version`" + `
whose exit code and output are checked. ` + "`attunectl sensor run`" + ` verifies the
sensor runtimes on its host and registers the available ones; ` + "`runtime verify`" + `
dry-runs exactly that detection.

Manifests (what ` + "`runtime add -f`" + ` reads and ` + "`runtime list -o yaml|json`" + ` writes)
hold one runtime object, a list of them, or several YAML documents:

  - ref: core.sensor.python        # lower case, dotted
    name: Python                   # detected name: lower(name)
    type: sensor                   # sensor (default) or action
    pack_ref: core
    description: Python 3 sensors
    aliases: [python3]
    verification:
      always_available: false      # or check_required: false
      commands:                    # tried by ascending priority; first success wins
        - binary: python3          # bare name on PATH or absolute path; never a shell
          args: [--version]
          exit_code: 0             # default 0
          pattern: 'Python 3\.'    # Go regular expression, stdout then stderr
          priority: 1`,
		Example: `  attunectl runtime list
  attunectl runtime add --ref acme.sensor.ruby --name Ruby --command 'ruby --version' --pattern '^ruby 3\.'
  attunectl runtime add -f runtimes.yaml
  attunectl runtime verify
  attunectl runtime remove acme.sensor.ruby`,
	}
	cmd.AddCommand(
		newRuntimeAddCmd(app),
		newRuntimeListCmd(app),
		newRuntimeVerifyCmd(app),
		newRuntimeRemoveCmd(app),
	)
	return cmd
}

// ---------------------------------------------------------------- add

// runtimeFlags describe one runtime on the command line.
type runtimeFlags struct {
	Ref, Name, Type, Description, PackRef string
	Aliases                               []string
	AlwaysAvailable                       bool
	// Commands are command lines ("python3 --version"), split into binary
	// and arguments by splitCommandLine, in priority order.
	Commands []string
	// Patterns, ExitCodes and Priorities hold either nothing, one value
	// for every command, or one value per command (paired in order).
	Patterns   []string
	ExitCodes  []int
	Priorities []int
}

// empty reports whether nothing describes a runtime.
func (f runtimeFlags) empty() bool {
	return f.Ref == "" && f.Name == "" && len(f.Commands) == 0 && !f.AlwaysAvailable
}

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
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			// cobra checks flag groups after PreRunE and returns a plain
			// error; checking here makes a conflict a usage error (exit 2).
			return usageError(cmd.ValidateFlagGroups())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			f, err := app.outputFormat(output.Table, output.Wide, output.JSON, output.YAML, output.Name)
			if err != nil {
				return err
			}
			o.Format, o.Palette = f, app.palette(app.Out)
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
	fs.DurationVar(&o.Timeout, "timeout", 0, "with --dry-run: per-command timeout (default sensor.verification.timeout, 5s)")
	for _, name := range runtimeFlagNames {
		cmd.MarkFlagsMutuallyExclusive("filename", name)
	}
	cmd.MarkFlagsMutuallyExclusive("always-available", "command")
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

// withDB connects to the configured (or embedded) database for fn.
func withDB(ctx context.Context, app *App, fn func(*database.DB) error) error {
	db, err := app.connect(ctx, connectOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
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
	case errors.As(err, &ve), errors.Is(err, runtimes.ErrExists):
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
	case output.JSON:
		return output.WriteJSON(app.Out, rep)
	case output.YAML:
		return output.WriteYAML(app.Out, rep)
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
	switch f {
	case output.JSON:
		return output.WriteJSON(w, rep)
	case output.YAML:
		return output.WriteYAML(w, rep)
	}
	for _, r := range rts {
		verb := "created"
		if slices.Contains(rep.Updated, r.Ref) {
			verb = "updated"
		}
		if f == output.Name {
			fmt.Fprintln(w, r.Ref)
		} else {
			fmt.Fprintf(w, "runtime %s %s\n", r.Ref, verb)
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

// readManifestFile reads and validates a manifest; "-" is the App's stdin.
// Every error is a usage error (exit 2): the input is wrong.
func readManifestFile(app *App, path string) ([]runtimes.Runtime, error) {
	var r io.Reader = app.In
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError(fmt.Errorf("reading manifest: %w: check the path given to -f", err))
		}
		defer f.Close()
		r, name = f, path
	}
	if r == nil {
		r = strings.NewReader("")
	}
	rts, err := runtimes.ReadManifest(r)
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", name, err))
	}
	return rts, nil
}

// runtime builds the runtime the flags describe and validates it: every
// problem is reported at once, named by its flag.
func (f runtimeFlags) runtime() (runtimes.Runtime, error) {
	r := runtimes.Runtime{
		Ref:         f.Ref,
		Name:        f.Name,
		Type:        f.Type,
		Description: f.Description,
		PackRef:     f.PackRef,
		Aliases:     f.Aliases,
	}
	var problems []runtimes.Problem
	add := func(p runtimes.Problem) {
		if !slices.Contains(problems, p) {
			problems = append(problems, p)
		}
	}
	n := len(f.Commands)
	for _, c := range []struct {
		flag  string
		count int
	}{{"--pattern", len(f.Patterns)}, {"--exit-code", len(f.ExitCodes)}, {"--priority", len(f.Priorities)}} {
		switch {
		case c.count > 0 && n == 0:
			add(runtimes.Problem{Path: c.flag, Msg: "applies to --command: give at least one --command"})
		case c.count > 1 && c.count != n:
			add(runtimes.Problem{Path: c.flag, Msg: fmt.Sprintf("given %d times for %d --command: give it once (for every command) or once per --command", c.count, n)})
		}
	}
	// pick returns the index of command i's value: the only one, or the
	// i-th; ok is false when the flag was not given (or given wrongly).
	pick := func(count, i int) (int, bool) {
		switch count {
		case 1:
			return 0, true
		case n:
			return i, true
		}
		return 0, false
	}
	// lines[j] is the --command behind r.Verification.Commands[j]: a line
	// that cannot be split is reported and left out.
	var lines []string
	switch {
	case f.AlwaysAvailable:
		r.Verification = &runtimes.Verification{AlwaysAvailable: true}
	case n > 0:
		v := &runtimes.Verification{}
		for i, line := range f.Commands {
			argv, err := splitCommandLine(line)
			if err != nil {
				add(runtimes.Problem{Path: commandFlag(line), Msg: err.Error()})
				continue
			}
			c := runtimes.Command{Binary: argv[0], Args: argv[1:], Priority: runtimes.Ptr(i + 1)}
			if j, ok := pick(len(f.Patterns), i); ok {
				c.Pattern = f.Patterns[j]
			}
			if j, ok := pick(len(f.ExitCodes), i); ok {
				c.ExitCode = runtimes.Ptr(f.ExitCodes[j])
			}
			if j, ok := pick(len(f.Priorities), i); ok {
				c.Priority = runtimes.Ptr(f.Priorities[j])
			}
			v.Commands = append(v.Commands, c)
			lines = append(lines, line)
		}
		if len(v.Commands) == 0 {
			v.CheckRequired = runtimes.Ptr(false) // every line was refused: no echo of "commands required"
		}
		r.Verification = v
	case f.Type != runtimes.TypeAction:
		add(runtimes.Problem{Path: "--command", Msg: "a sensor runtime needs at least one --command (such as --command 'python3 --version') or --always-available; without either it is never available"})
	}
	var ve *runtimes.ValidationError
	if err := runtimes.Validate([]runtimes.Runtime{r}); errors.As(err, &ve) {
		for _, p := range ve.Problems {
			p.Path = f.flagPath(p.Path, lines)
			add(p)
		}
	} else if err != nil {
		return r, usageError(err)
	}
	if len(problems) > 0 {
		return r, usageError(&runtimes.ValidationError{Problems: problems})
	}
	return r, nil
}

// flagPath turns a validation path (runtimes[0].verification.commands[1].binary)
// into the flag that set it (--command "python --version"); lines are the
// command lines behind the commands.
func (f runtimeFlags) flagPath(path string, lines []string) string {
	p, ok := strings.CutPrefix(path, "runtimes[0].")
	if !ok {
		return path
	}
	switch p {
	case "ref", "name", "type", "description":
		return "--" + p
	case "pack_ref":
		return "--pack-ref"
	case "verification.commands":
		return "--command"
	}
	var i int
	if _, err := fmt.Sscanf(p, "aliases[%d]", &i); err == nil && i < len(f.Aliases) {
		return fmt.Sprintf("--alias %q", f.Aliases[i])
	}
	rest, ok := strings.CutPrefix(p, "verification.commands[")
	if !ok {
		return path
	}
	idx, field, ok := strings.Cut(rest, "].")
	if _, err := fmt.Sscanf(idx, "%d", &i); err != nil || !ok || i >= len(lines) {
		return path
	}
	switch field {
	case "pattern":
		return "--pattern"
	case "exit_code":
		return "--exit-code"
	case "priority":
		return "--priority"
	default: // binary, args, args[n]
		return commandFlag(lines[i])
	}
}

func commandFlag(line string) string { return fmt.Sprintf("--command %q", line) }

// shellChars are characters a shell would interpret. A --command line is
// never run by a shell, so an unquoted one means the operator expected a
// shell (`python3 --version; rm -rf /`, `node -v | grep 20`): refuse it
// rather than pass it on as a literal argument.
const shellChars = ";&|<>$`()\\*?~{}[]#"

// splitCommandLine splits a --command value into the binary and its
// arguments: words are separated by blanks; '…' keeps everything literally;
// "…" too, except that \" and \\ stand for " and \. Unquoted shell
// characters and control characters are errors. The binary itself is
// checked later by runtimes.Validate.
func splitCommandLine(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote: close it, or quote the command differently")
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 2
		case c == '"':
			inWord = true
			i++
			closed := false
			for i < len(s) && !closed {
				switch {
				case s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
					cur.WriteByte(s[i+1])
					i += 2
				case s[i] == '"':
					closed = true
					i++
				default:
					cur.WriteByte(s[i])
					i++
				}
			}
			if !closed {
				return nil, errors.New(`unterminated " quote: close it, or quote the command differently`)
			}
		case c == '\n' || c == '\r':
			return nil, errors.New("contains a newline: give one command per --command")
		case c < ' ' || c == 0x7f:
			return nil, fmt.Errorf("contains the control character %q", c)
		case strings.IndexByte(shellChars, c) >= 0:
			return nil, fmt.Errorf("contains %q, which only a shell understands, and commands run without a shell: quote it ('%c') to pass it as a literal argument, or use -f with binary and args", c, c)
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command: give the program and its arguments, such as 'python3 --version'")
	}
	return words, nil
}

// ---------------------------------------------------------------- remove

// runtimeRemoveOptions are the options of `runtime remove`.
type runtimeRemoveOptions struct {
	Refs   []string
	Format output.Format
}

func newRuntimeRemoveCmd(app *App) *cobra.Command {
	o := &runtimeRemoveOptions{}
	cmd := &cobra.Command{
		Use:     "remove REF...",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove runtimes (all of them or none)",
		Long: `Remove the runtimes with these refs, in one transaction. When a ref does not
exist nothing is removed and the exit status is 2, naming the missing refs.

Workers that point at a removed runtime (worker.runtime) keep their rows: the
reference is set to NULL. Sensor workers stop reporting a removed sensor
runtime at their next verification.

Output (-o): table (default: one line per runtime), json and yaml
({removed: [refs]}), name (refs).`,
		Example: `  attunectl runtime remove acme.sensor.ruby
  attunectl runtime remove acme.sensor.ruby acme.sensor.java -o name`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeRuntimeRefs(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := app.outputFormat(output.Table, output.JSON, output.YAML, output.Name)
			if err != nil {
				return err
			}
			o.Refs, o.Format = args, f
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runRuntimeRemove(cmd.Context(), app, db, *o)
			})
		},
	}
	return cmd
}

func runRuntimeRemove(ctx context.Context, app *App, db *database.DB, o runtimeRemoveOptions) error {
	removed, err := runtimes.Remove(ctx, db, o.Refs)
	if errors.Is(err, runtimes.ErrNotFound) {
		return usageError(fmt.Errorf("%w; nothing was removed", err))
	}
	if err != nil {
		return err
	}
	switch o.Format {
	case output.JSON:
		return output.WriteJSON(app.Out, map[string][]string{"removed": removed})
	case output.YAML:
		return output.WriteYAML(app.Out, map[string][]string{"removed": removed})
	}
	for _, ref := range removed {
		if o.Format == output.Name {
			fmt.Fprintln(app.Out, ref)
		} else {
			fmt.Fprintf(app.Out, "runtime %s removed\n", ref)
		}
	}
	return nil
}

// ---------------------------------------------------------------- completion

// completeRuntimeRefs completes the refs of the runtime table (or of the
// manifest given with -f), leaving out those already on the line. It asks
// the database for at most completionTimeout, uses the embedded server only
// when it is already running, and completes nothing on any failure.
func completeRuntimeRefs(app *App) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return filterCompletions(runtimeRefsForCompletion(cmd, app), args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func runtimeRefsForCompletion(cmd *cobra.Command, app *App) []string {
	if err := prepareCompletion(cmd, app); err != nil {
		return nil
	}
	if fl := cmd.Flags().Lookup("filename"); fl != nil && fl.Value.String() != "" {
		if fl.Value.String() == "-" {
			return nil
		}
		rts, err := readManifestFile(app, fl.Value.String())
		if err != nil {
			return nil
		}
		return runtimes.Refs(rts)
	}
	return completionQuery(cmd, app, func(ctx context.Context, db *database.DB) ([]string, error) {
		rts, err := runtimes.List(ctx, db, runtimes.Filter{})
		return runtimes.Refs(rts), err
	})
}
