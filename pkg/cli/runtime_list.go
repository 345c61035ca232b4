package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/runtimes"
)

// runtimeListOptions are the options of `runtime list`.
type runtimeListOptions struct {
	Refs   []string
	Type   string
	Format output.Format
}

// Validate checks the type filter.
func (o *runtimeListOptions) Validate() error {
	switch o.Type {
	case "", runtimes.TypeSensor, runtimes.TypeAction:
		return nil
	}
	return usageErrorf("--type %q: use %s or %s", o.Type, runtimes.TypeSensor, runtimes.TypeAction)
}

func newRuntimeListCmd(app *App) *cobra.Command {
	o := &runtimeListOptions{}
	cmd := &cobra.Command{
		Use:     "list [REF...]",
		Aliases: []string{"ls"},
		Short:   "List runtimes and how each is verified",
		Long: `List the runtimes of the runtime table, ordered by ref, with how a host
verifies each one: CHECK is "always" (always_available, or check_required
false), the commands in the order detection tries them, <none> for a runtime
without verification metadata (never available), or <invalid> for metadata
that cannot be read. Give refs to list only those (a missing ref is an error,
exit 2); --type keeps sensor or action runtimes only.

Output (-o): table (default), wide (one line per command with its priority,
expected exit code and pattern, plus pack and aliases), json and yaml (a
manifest: valid input for ` + "`runtime add -f`" + `, so a listing exported from one
database can be imported into another), name (refs).`,
		Example: `  attunectl runtime list
  attunectl runtime list --type sensor -o wide
  attunectl runtime list core.sensor.python -o yaml > python.yaml
  attunectl runtime list -o yaml | attunectl --database-url postgres://attune@db2/attune runtime add -f -`,
		ValidArgsFunction: completeRuntimeRefs(app),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			f, err := app.outputFormat(output.Table, output.Wide, output.JSON, output.YAML, output.Name)
			if err != nil {
				return err
			}
			o.Refs, o.Format = args, f
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runRuntimeList(cmd.Context(), app, db, *o)
			})
		},
	}
	cmd.Flags().StringVar(&o.Type, "type", "", "only runtimes of this type: sensor or action")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{runtimes.TypeSensor, runtimes.TypeAction}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runRuntimeList(ctx context.Context, app *App, db *database.DB, o runtimeListOptions) error {
	rts, err := runtimes.List(ctx, db, runtimes.Filter{Type: o.Type, Refs: o.Refs})
	if err != nil {
		return err
	}
	if missing := missingRefs(o.Refs, rts); len(missing) > 0 {
		return usageError(fmt.Errorf("runtime %s not found in schema %s: see `attunectl runtime list`", strings.Join(missing, ", "), db.Schema))
	}
	if len(rts) == 0 && (o.Format == output.Table || o.Format == output.Wide) {
		fmt.Fprintln(app.Err, "No runtimes found.")
		return nil
	}
	if o.Format == output.JSON || o.Format == output.YAML {
		for _, r := range rts {
			if r.VerificationProblem != "" {
				fmt.Fprintf(app.Err, "warning: runtime %s: %s; it is written without verification\n", r.Ref, r.VerificationProblem)
			}
		}
	}
	return printRuntimes(app.Out, rts, o.Format, app.Now())
}

// missingRefs returns the requested refs (compared lower-cased) that are not
// among rts, in the order asked, without duplicates.
func missingRefs(requested []string, rts []runtimes.Runtime) []string {
	have := map[string]bool{}
	for _, r := range rts {
		have[r.Ref] = true
	}
	var missing []string
	for _, ref := range requested {
		ref = strings.ToLower(strings.TrimSpace(ref))
		if !have[ref] {
			have[ref] = true
			missing = append(missing, ref)
		}
	}
	return missing
}

// printRuntimes writes rts in format f; ages are relative to now.
func printRuntimes(w io.Writer, rts []runtimes.Runtime, f output.Format, now time.Time) error {
	switch f {
	case output.JSON, output.YAML:
		b, err := runtimes.Marshal(rts, string(f))
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case output.Name:
		for _, r := range rts {
			fmt.Fprintln(w, r.Ref)
		}
		return nil
	case output.Wide:
		return printRuntimesWide(w, rts, now)
	}
	t := output.NewTable(w, "REF", "NAME", "TYPE", "CHECK", "UPDATED")
	for _, r := range rts {
		t.Append(r.Ref, r.Name, typeOf(r), checkOf(r), output.Age(now, &r.Updated))
	}
	return t.Render()
}

// printRuntimesWide prints one line per verification command: the first
// line of a runtime carries its columns, the next ones only the command's.
func printRuntimesWide(w io.Writer, rts []runtimes.Runtime, now time.Time) error {
	t := output.NewTable(w, "REF", "NAME", "TYPE", "PACK", "ALIASES", "UPDATED", "PRIORITY", "COMMAND", "EXIT", "PATTERN")
	for _, r := range rts {
		head := []string{r.Ref, r.Name, typeOf(r), r.PackRef, strings.Join(r.Aliases, ","), output.Age(now, &r.Updated)}
		v := r.Verification
		if r.VerificationProblem != "" || v == nil || v.Always() || len(v.Commands) == 0 {
			t.Append(append(head, "", checkOf(r))...)
			continue
		}
		for i, c := range v.SortedCommands() {
			row := make([]string, len(head))
			if i == 0 {
				copy(row, head)
			}
			prio := "-"
			if c.Priority != nil {
				prio = strconv.Itoa(*c.Priority)
			}
			t.Append(append(row, prio, c.String(), strconv.Itoa(c.ExpectedExit()), c.Pattern)...)
		}
	}
	return t.Render()
}

// typeOf shows the runtime type; "-" on a database without runtime_type.
func typeOf(r runtimes.Runtime) string {
	if r.Type == "" {
		return "-"
	}
	return r.Type
}

// checkOf is the CHECK column: how a host verifies the runtime.
func checkOf(r runtimes.Runtime) string {
	v := r.Verification
	switch {
	case r.VerificationProblem != "":
		return "<invalid>"
	case v.Always():
		return "always"
	case v == nil || len(v.Commands) == 0:
		return "<none>"
	}
	cmds := v.SortedCommands()
	lines := make([]string, len(cmds))
	for i, c := range cmds {
		lines[i] = c.String()
	}
	return strings.Join(lines, ", ")
}
