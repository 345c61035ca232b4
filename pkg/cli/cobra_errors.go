package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// cobraMessages recognise cobra's own argument and flag-group errors, which
// it returns as plain errors in its own words.
var (
	reMinArgs   = regexp.MustCompile(`^requires at least (\d+) arg\(s\), only received (\d+)$`)
	reMaxArgs   = regexp.MustCompile(`^accepts at most (\d+) arg\(s\), received (\d+)$`)
	reExactArgs = regexp.MustCompile(`^accepts (\d+) arg\(s\), received (\d+)$`)
	reNoArgs    = regexp.MustCompile(`^unknown command (".*") for ".*"$`)
	reExclusive = regexp.MustCompile(`^if any flags in the group \[([^\]]*)\] are set none of the others can be; \[([^\]]*)\] were all set$`)
	reOneOf     = regexp.MustCompile(`^at least one of the flags in the group \[([^\]]*)\] is required$`)
	reTogether  = regexp.MustCompile(`^if any flags in the group \[([^\]]*)\] are set they must all be set; missing \[([^\]]*)\]$`)
	reRequired  = regexp.MustCompile(`^required flag\(s\) (.*) not set$`)
)

// explainCobraError rewrites an error cobra made in attunectl's words —
// what was wrong, and where to look — as bad input (exit 2). Other errors,
// and cobra's errors that already say it plainly (unknown flag, a flag
// without its argument), come back as they are, ok false.
func explainCobraError(cmd *cobra.Command, err error) (error, bool) {
	if cmd == nil {
		return err, false
	}
	path := cmd.CommandPath()
	see := fmt.Sprintf(" (see `%s --help`)", path)
	msg := err.Error()
	if m := reMinArgs.FindStringSubmatch(msg); m != nil {
		return usageErrorf("%s needs at least %s: %s%s", path, plural(m[1], "argument"), argsOf(cmd), see), true
	}
	if m := reMaxArgs.FindStringSubmatch(msg); m != nil {
		return usageErrorf("%s takes at most %s, got %s%s", path, plural(m[1], "argument"), m[2], see), true
	}
	if m := reExactArgs.FindStringSubmatch(msg); m != nil {
		if m[1] == "0" {
			return usageErrorf("%s takes no arguments, got %s%s", path, m[2], see), true
		}
		return usageErrorf("%s takes %s (%s), got %s%s", path, plural(m[1], "argument"), argsOf(cmd), m[2], see), true
	}
	if m := reNoArgs.FindStringSubmatch(msg); m != nil && !cmd.HasSubCommands() {
		return usageErrorf("%s takes no arguments, got %s%s", path, m[1], see), true
	}
	if m := reExclusive.FindStringSubmatch(msg); m != nil {
		return usageErrorf("%s cannot be combined%s", flagList(m[2], "and"), see), true
	}
	if m := reOneOf.FindStringSubmatch(msg); m != nil {
		return usageErrorf("%s needs one of %s%s", path, flagList(m[1], "or"), see), true
	}
	if m := reTogether.FindStringSubmatch(msg); m != nil {
		return usageErrorf("%s go together: add %s%s", flagList(m[1], "and"), flagList(m[2], "and"), see), true
	}
	if m := reRequired.FindStringSubmatch(msg); m != nil {
		names := strings.ReplaceAll(strings.ReplaceAll(m[1], `"`, ""), ",", " ")
		return usageErrorf("%s needs %s%s", path, flagList(names, "and"), see), true
	}
	return err, false
}

// argsOf is the arguments part of a command's usage line, e.g. "REF...".
func argsOf(cmd *cobra.Command) string {
	_, args, _ := strings.Cut(cmd.Use, " ")
	if args == "" {
		return "see its usage"
	}
	return args
}

func plural(n, noun string) string {
	if n == "1" {
		return "one " + noun
	}
	if i, err := strconv.Atoi(n); err == nil && i > 1 {
		return n + " " + noun + "s"
	}
	return n + " " + noun
}

// flagList turns cobra's "a b c" into "--a, --b and --c".
func flagList(names, conj string) string {
	fs := strings.Fields(names)
	for i, f := range fs {
		fs[i] = "--" + f
	}
	if len(fs) <= 1 {
		return strings.Join(fs, "")
	}
	return strings.Join(fs[:len(fs)-1], ", ") + " " + conj + " " + fs[len(fs)-1]
}
