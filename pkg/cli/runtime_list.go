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
			f, err := app.outputFormat(cmd)
			if err != nil {
				return err
			}
			o.Refs, o.Format = args, f
			return withDB(cmd.Context(), app, func(db *database.DB) error {
				return runRuntimeList(cmd.Context(), app, db, *o)
			})
		},
	}
	offerFormats(cmd, runtimeSpec(time.Time{}).Formats())
	cmd.Flags().StringVar(&o.Type, "type", "", "only runtimes of this type: sensor or action")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{runtimes.TypeSensor, runtimes.TypeAction}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runRuntimeList(ctx context.Context, app *App, db *database.DB, o runtimeListOptions) error {
	rts, err := runtimes.List(ctx, db, runtimes.Filter{Type: o.Type, Refs: o.Refs})
	if err != nil {
		return err
	}
	if missing := runtimes.MissingRefs(o.Refs, rts); len(missing) > 0 {
		return usageError(runtimes.NotFoundInSchema(missing, db.Schema))
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

// runtimeLine is one line of `runtime list`: a runtime, and in -o wide
// one of its verification commands (Cmd nil: the runtime has none, or its
// check is "always"). Only a runtime's first line carries its columns.
type runtimeLine struct {
	R     *runtimes.Runtime
	Cmd   *runtimes.Command
	First bool
}

// runtimeSpec prints `runtime list`: ages are relative to now; -o json and
// -o yaml are a manifest (valid input for `runtime add -f`).
func runtimeSpec(now time.Time) output.Spec[runtimeLine] {
	type col = output.Column[runtimeLine]
	head := func(h string, cell func(r *runtimes.Runtime) string) col {
		return col{Header: h, Cell: func(l runtimeLine) string {
			if !l.First {
				return ""
			}
			return cell(l.R)
		}}
	}
	cmd := func(h string, cell func(c *runtimes.Command) string) col {
		return col{Header: h, Cell: func(l runtimeLine) string {
			if l.Cmd == nil {
				return ""
			}
			return cell(l.Cmd)
		}}
	}
	ref := head("REF", func(r *runtimes.Runtime) string { return r.Ref })
	name := head("NAME", func(r *runtimes.Runtime) string { return r.Name })
	typ := head("TYPE", typeOf)
	updated := head("UPDATED", func(r *runtimes.Runtime) string { return output.Age(now, &r.Updated) })
	return output.Spec[runtimeLine]{
		Columns: []col{ref, name, typ, head("CHECK", checkOf), updated},
		Wide: []col{ref, name, typ,
			head("PACK", func(r *runtimes.Runtime) string { return r.PackRef }),
			head("ALIASES", func(r *runtimes.Runtime) string { return strings.Join(r.Aliases, ",") }),
			updated,
			cmd("PRIORITY", func(c *runtimes.Command) string {
				if c.Priority == nil {
					return "-"
				}
				return strconv.Itoa(*c.Priority)
			}),
			{Header: "COMMAND", Cell: func(l runtimeLine) string {
				if l.Cmd == nil {
					return checkOf(l.R)
				}
				return l.Cmd.String()
			}},
			cmd("EXIT", func(c *runtimes.Command) string { return strconv.Itoa(c.ExpectedExit()) }),
			cmd("PATTERN", func(c *runtimes.Command) string { return c.Pattern }),
		},
		WideLines: func(l runtimeLine) []runtimeLine {
			v := l.R.Verification
			if l.R.VerificationProblem != "" || v == nil || v.Always() || len(v.Commands) == 0 {
				return []runtimeLine{l}
			}
			cmds := v.SortedCommands()
			lines := make([]runtimeLine, len(cmds))
			for i := range cmds {
				lines[i] = runtimeLine{R: l.R, Cmd: &cmds[i], First: i == 0}
			}
			return lines
		},
		Name: func(l runtimeLine) string { return l.R.Ref },
		Encode: func(w io.Writer, f output.Format, lines []runtimeLine) error {
			rts := make([]runtimes.Runtime, len(lines))
			for i, l := range lines {
				rts[i] = *l.R
			}
			b, err := runtimes.Marshal(rts, string(f))
			if err != nil {
				return err
			}
			_, err = w.Write(b)
			return err
		},
	}
}

// printRuntimes writes rts in format f; ages are relative to now.
func printRuntimes(w io.Writer, rts []runtimes.Runtime, f output.Format, now time.Time) error {
	p := runtimeSpec(now).NewPrinter(w, f, output.PrinterOptions{})
	for i := range rts {
		if err := p.Write(runtimeLine{R: &rts[i], First: true}); err != nil {
			return err
		}
	}
	return p.Flush()
}

// typeOf shows the runtime type; "-" on a database without runtime_type.
func typeOf(r *runtimes.Runtime) string {
	if r.Type == "" {
		return "-"
	}
	return r.Type
}

// checkOf is the CHECK column: how a host verifies the runtime.
func checkOf(r *runtimes.Runtime) string {
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
