package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/attune-automation/attunectl/pkg/runtimes"
)

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
		return r, usageError(&runtimes.ValidationError{What: "runtime", Problems: problems})
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
