package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Argument validators: cobra's own (NoArgs, ExactArgs, …) word their errors
// in cobra's terms; these say in attunectl's what was wrong and where to
// look, as bad input (exit 2).

// noArgs accepts no positional argument.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q%s", cmd.CommandPath(), args[0], seeHelp(cmd))
	}
	return nil
}

// exactArgs accepts exactly n arguments.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s (%s), got %d%s", cmd.CommandPath(), plural(n, "argument"), argsOf(cmd), len(args), seeHelp(cmd))
		}
		return nil
	}
}

// minArgs accepts n arguments or more.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("%s needs at least %s: %s%s", cmd.CommandPath(), plural(n, "argument"), argsOf(cmd), seeHelp(cmd))
		}
		return nil
	}
}

func seeHelp(cmd *cobra.Command) string { return fmt.Sprintf(" (see `%s --help`)", cmd.CommandPath()) }

// argsOf is the arguments part of a command's usage line, e.g. "REF...".
func argsOf(cmd *cobra.Command) string {
	_, args, _ := strings.Cut(cmd.Use, " ")
	if args == "" {
		return "see its usage"
	}
	return args
}

func plural(n int, noun string) string {
	switch n {
	case 1:
		return "one " + noun
	default:
		return strconv.Itoa(n) + " " + noun + "s"
	}
}

// exclusiveAnnotation on a flag lists, comma-separated, the flags it
// cannot be combined with (markExclusive).
const exclusiveAnnotation = "attunectl/exclusive"

// markExclusive records that the named flags of cmd cannot be combined;
// checkExclusive refuses a command line that sets two of them, in
// attunectl's words, before anything runs.
func markExclusive(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil {
			panic("markExclusive: no flag --" + n) // a programming error
		}
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[exclusiveAnnotation] = append(f.Annotations[exclusiveAnnotation], strings.Join(names, ","))
	}
}

// checkExclusive is the check of markExclusive's groups.
func checkExclusive(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		for _, group := range f.Annotations[exclusiveAnnotation] {
			for _, other := range strings.Split(group, ",") {
				if o := cmd.Flags().Lookup(other); err == nil && other != f.Name && o != nil && o.Changed {
					err = usageErrorf("--%s and --%s cannot be combined%s", f.Name, other, seeHelp(cmd))
				}
			}
		}
	})
	return err
}
