package runtimes

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"

	"github.com/attune-automation/attunectl/pkg/manifest"
)

// Limits applied to manifests. They are generous for real runtimes and stop
// a shared database from being filled with pathological rows.
const (
	// MaxManifestSize is the largest manifest ParseManifest and ReadManifest accept (1 MiB).
	MaxManifestSize = 1 << 20
	MaxCommands     = 32   // commands per runtime
	MaxArgs         = 64   // arguments per command
	MaxArgLen       = 4096 // bytes per argument
	MaxBinaryLen    = 4096 // bytes of a binary name or path (PATH_MAX)
	MaxPatternLen   = 4096 // bytes of a pattern
	MaxNameLen      = 255  // bytes of a name, ref or pack_ref
)

var (
	refRE     = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)+$`)
	packRefRE = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)*$`)
)

// Problem is one thing wrong with a manifest, at a path such as
// `runtimes[0].verification.commands[1].pattern` (pkg/manifest's).
type Problem = manifest.Problem

// ValidationError lists every problem found in a manifest or a runtime
// built from flags. Every error ParseManifest returns is a
// *ValidationError, so the CLI can map it to exit status 2 with errors.As.
type ValidationError = manifest.ValidationError

// Validate checks runtimes built in code (e.g. from `runtime add` flags)
// with the same rules ParseManifest applies: a *ValidationError listing
// every problem, or nil. Type "" is accepted and means sensor.
func Validate(rts []Runtime) error {
	v := validator{what: "runtime"}
	v.runtimes(rts)
	return v.err()
}

// validator collects semantic problems. lines maps paths to file lines;
// skip holds paths that already have a structural problem (wrong type,
// unknown key), so one mistake is not reported twice.
type validator struct {
	problems []Problem
	lines    map[string]int
	skip     map[string]bool
	what     string
}

func (v *validator) add(path, format string, args ...any) {
	if v.skip[path] {
		return
	}
	v.problems = append(v.problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...), Line: v.lines[path]})
}

// badUnder reports whether a structural problem was found inside p (then a
// missing-commands problem would only be its echo).
func (v *validator) badUnder(p string) bool {
	for k := range v.skip {
		if strings.HasPrefix(k, p+".") {
			return true
		}
	}
	return false
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems, What: v.what}
}

func (v *validator) runtimes(rts []Runtime) {
	seen := map[string]int{}
	for i := range rts {
		p := fmt.Sprintf("runtimes[%d]", i)
		v.runtime(p, &rts[i])
		if rts[i].Ref == "" {
			continue
		}
		if j, dup := seen[rts[i].Ref]; dup {
			v.add(p+".ref", "duplicate ref %s (also runtimes[%d]): each runtime may appear once per file", rts[i].Ref, j)
			continue
		}
		seen[rts[i].Ref] = i
	}
}

func (v *validator) runtime(p string, r *Runtime) {
	switch {
	case r.Ref == "":
		v.add(p+".ref", "required: a lower-case dotted ref such as core.sensor.python")
	case len(r.Ref) > MaxNameLen:
		v.add(p+".ref", "longer than %d bytes", MaxNameLen)
	case strings.ToLower(r.Ref) != r.Ref && refRE.MatchString(strings.ToLower(r.Ref)):
		v.add(p+".ref", "%q must be lower case: use %s", r.Ref, strings.ToLower(r.Ref))
	case !refRE.MatchString(r.Ref):
		v.add(p+".ref", "%q is not a valid ref: use lower-case letters, digits, '_' and '-' in at least two dot-separated parts, such as core.sensor.python", r.Ref)
	}
	switch {
	case strings.TrimSpace(r.Name) == "" && r.Name == "":
		v.add(p+".name", "required: the runtime's display name, such as Python")
	case strings.TrimSpace(r.Name) == "":
		v.add(p+".name", "must not be blank")
	case len(r.Name) > MaxNameLen:
		v.add(p+".name", "longer than %d bytes", MaxNameLen)
	case hasControl(r.Name):
		v.add(p+".name", "must not contain control characters")
	}
	switch r.Type {
	case "", TypeSensor, TypeAction:
	default:
		v.add(p+".type", "%q is not a runtime type: use sensor or action", r.Type)
	}
	if r.PackRef != "" && (!packRefRE.MatchString(r.PackRef) || len(r.PackRef) > MaxNameLen) {
		v.add(p+".pack_ref", "%q is not a valid pack ref: use lower-case letters, digits, '_', '-' and dots, such as core", r.PackRef)
	}
	for i, a := range r.Aliases {
		ap := fmt.Sprintf("%s.aliases[%d]", p, i)
		if strings.TrimSpace(a) == "" {
			v.add(ap, "must not be blank")
		} else if hasControl(a) {
			v.add(ap, "must not contain control characters")
		}
	}
	if r.Verification != nil {
		v.verification(p+".verification", r.Verification)
	}
}

func (v *validator) verification(p string, ver *Verification) {
	if len(ver.Commands) == 0 && !ver.Always() && !v.badUnder(p) {
		v.add(p+".commands", "required unless always_available is true or check_required is false: add at least one command such as {binary: python3, args: [--version]}")
	}
	if len(ver.Commands) > MaxCommands {
		v.add(p+".commands", "%d commands, more than the limit of %d", len(ver.Commands), MaxCommands)
	}
	for i, c := range ver.Commands {
		v.command(fmt.Sprintf("%s.commands[%d]", p, i), c)
	}
}

func (v *validator) command(p string, c Command) {
	if err := ValidateBinary(c.Binary); err != nil {
		v.add(p+".binary", "%s", err.Error())
	}
	if len(c.Args) > MaxArgs {
		v.add(p+".args", "%d arguments, more than the limit of %d", len(c.Args), MaxArgs)
	}
	for i, a := range c.Args {
		ap := fmt.Sprintf("%s.args[%d]", p, i)
		switch {
		case strings.ContainsRune(a, 0):
			v.add(ap, "must not contain a NUL byte")
		case strings.ContainsAny(a, "\n\r"):
			v.add(ap, "must not contain a newline: each argument is one line, passed as is")
		case len(a) > MaxArgLen:
			v.add(ap, "longer than %d bytes", MaxArgLen)
		}
	}
	if c.ExitCode != nil && (*c.ExitCode < 0 || *c.ExitCode > 255) {
		v.add(p+".exit_code", "%d is out of range: an exit code is 0-255", *c.ExitCode)
	}
	if c.Pattern != "" {
		if len(c.Pattern) > MaxPatternLen {
			v.add(p+".pattern", "longer than %d bytes", MaxPatternLen)
		} else if _, err := regexp.Compile(c.Pattern); err != nil {
			var se *syntax.Error
			if errors.As(err, &se) && (se.Code == syntax.ErrInvalidPerlOp || se.Code == syntax.ErrInvalidEscape) {
				v.add(p+".pattern", "%s: patterns are Go (RE2) regular expressions, without lookaround or backreferences", err.Error())
			} else {
				v.add(p+".pattern", "%s", err.Error())
			}
		}
	}
}

// shellMeta are characters that mean something to a shell. A binary never
// needs them; their presence means someone expected a shell.
const shellMeta = ";&|$`<>(){}[]*?!~'\"\\#=%^"

// ValidateBinary checks that b is a bare name (looked up on PATH) or a
// clean absolute path, made of letters, digits and . _ + @ - (and / in a
// path). Whitespace, shell metacharacters, relative paths, "." and ".."
// components are refused: commands run without a shell, so such a binary is
// either a mistake or an attempt at injection. The detection engine applies
// the same check to rows it reads from the database.
func ValidateBinary(b string) error {
	if b == "" {
		return fmt.Errorf("must not be empty: name the program, such as python3 or /usr/bin/python3")
	}
	if len(b) > MaxBinaryLen {
		return fmt.Errorf("longer than %d bytes", MaxBinaryLen)
	}
	for _, r := range b {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("%q contains a control character: name the program only", b)
		}
	}
	if i := strings.IndexAny(b, shellMeta); i >= 0 {
		return fmt.Errorf("%q contains shell metacharacter %q: commands run without a shell; put the program in binary and each argument in args", b, string(b[i]))
	}
	if strings.IndexFunc(b, unicode.IsSpace) >= 0 {
		return fmt.Errorf("%q contains whitespace: put the program in binary and each argument in args", b)
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+@-/", r)) {
			return fmt.Errorf("%q contains %q: a binary may contain letters, digits and . _ + @ - only", b, r)
		}
	}
	if !strings.HasPrefix(b, "/") {
		if strings.Contains(b, "/") || b == "." || b == ".." {
			return fmt.Errorf("relative path %q: use a bare name looked up on PATH (python3) or an absolute path (/usr/bin/python3)", b)
		}
		if strings.HasPrefix(b, "-") {
			return fmt.Errorf("%q must not start with '-'", b)
		}
		return nil
	}
	if strings.HasSuffix(b, "/") {
		return fmt.Errorf("%q ends with '/': name a file, such as /usr/bin/python3", b)
	}
	for _, part := range strings.Split(b[1:], "/") {
		switch part {
		case "":
			return fmt.Errorf("%q has an empty path component: write it as a clean absolute path", b)
		case ".", "..":
			return fmt.Errorf("%q contains a %q component: write it as a clean absolute path without . or ..", b, part)
		}
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
