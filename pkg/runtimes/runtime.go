// Package runtimes owns the runtime model of attunectl: a runtime row of the
// database, its verification metadata (distributions->'verification'), the
// manifest format that `runtime add -f` reads and `runtime list -o yaml|json`
// writes, and the repository functions that read and write the runtime table.
//
// Two parsers exist on purpose. ParseManifest is strict, because what an
// operator writes must be exactly what they meant (a typo such as `patern`
// is an error, not a silently ignored field). ParseDistributions is lenient,
// because rows that Attune or another tool wrote may carry keys this tool
// does not know, and detection must still work with them.
package runtimes

import (
	"sort"
	"strings"
	"time"
)

// Runtime types as stored in runtime.runtime_type.
const (
	TypeSensor = "sensor"
	TypeAction = "action"
)

// Runtime is one row of the runtime table. Its json/yaml tags are the
// manifest form: marshalling a Runtime gives an object that ParseManifest
// accepts. ID, Created, Updated and VerificationProblem are database facts
// and are not part of a manifest.
type Runtime struct {
	ID   int64  `json:"-" yaml:"-"`
	Ref  string `json:"ref" yaml:"ref"`
	Name string `json:"name" yaml:"name"`
	// Type is "sensor" or "action"; it is "" when read from a database whose
	// runtime table has no runtime_type column (unified runtimes).
	Type        string   `json:"type,omitempty" yaml:"type,omitempty"`
	PackRef     string   `json:"pack_ref,omitempty" yaml:"pack_ref,omitempty"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	Aliases     []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	// Verification is nil when the runtime has no verification metadata;
	// detection then reports it unavailable.
	Verification *Verification `json:"verification,omitempty" yaml:"verification,omitempty"`
	Created      time.Time     `json:"-" yaml:"-"`
	Updated      time.Time     `json:"-" yaml:"-"`
	// VerificationProblem is set when the row's distributions could not be
	// read (ParseDistributions failed). Detection reports the runtime
	// unavailable with this text instead of failing every runtime.
	VerificationProblem string `json:"-" yaml:"-"`
}

// DetectedName is the name a sensor worker reports for this runtime:
// lower(name), as Attune's registration expects (`["built-in sensor", "native", ...]`).
func (r Runtime) DetectedName() string {
	return strings.ToLower(strings.TrimSpace(r.Name))
}

// Verification is the metadata at distributions->'verification'.
type Verification struct {
	// AlwaysAvailable marks runtimes that need no check (built-in, native, shell).
	AlwaysAvailable bool `json:"always_available,omitempty" yaml:"always_available,omitempty"`
	// CheckRequired is Attune's spelling of the same idea: false means
	// available without checking. nil means "not said".
	CheckRequired *bool     `json:"check_required,omitempty" yaml:"check_required,omitempty"`
	Commands      []Command `json:"commands,omitempty" yaml:"commands,omitempty"`
}

// Always reports whether the runtime is available without running a
// command: always_available is true or check_required is false.
func (v *Verification) Always() bool {
	if v == nil {
		return false
	}
	return v.AlwaysAvailable || (v.CheckRequired != nil && !*v.CheckRequired)
}

// SortedCommands returns a copy of the commands in the order detection tries
// them: ascending priority, commands without a priority last, ties in file
// order.
func (v *Verification) SortedCommands() []Command {
	if v == nil {
		return nil
	}
	cmds := append([]Command(nil), v.Commands...)
	sort.SliceStable(cmds, func(i, j int) bool {
		pi, pj := cmds[i].Priority, cmds[j].Priority
		switch {
		case pi == nil:
			return false
		case pj == nil:
			return true
		default:
			return *pi < *pj
		}
	})
	return cmds
}

// Command is one verification command. It is run as argv (Binary, Args...),
// never through a shell.
type Command struct {
	// Binary is a bare name looked up on PATH or an absolute path.
	Binary string   `json:"binary" yaml:"binary"`
	Args   []string `json:"args,omitempty" yaml:"args,omitempty"`
	// ExitCode is the expected exit status; nil means 0.
	ExitCode *int `json:"exit_code,omitempty" yaml:"exit_code,omitempty"`
	// Pattern is a Go (RE2) regular expression searched in stdout followed
	// by stderr; "" means no pattern check.
	Pattern  string `json:"pattern,omitempty" yaml:"pattern,omitempty"`
	Priority *int   `json:"priority,omitempty" yaml:"priority,omitempty"`
	// Optional only quiets logging when the command fails (Attune's meaning).
	Optional bool `json:"optional,omitempty" yaml:"optional,omitempty"`
}

// ExpectedExit is the exit status that counts as success (default 0).
func (c Command) ExpectedExit() int {
	if c.ExitCode == nil {
		return 0
	}
	return *c.ExitCode
}

// String is the command line as an operator would type it, arguments that
// need it quoted: `python3 --version`.
func (c Command) String() string {
	return CommandLine(c.Binary, c.Args)
}

// CommandLine formats a binary and its arguments as a POSIX shell line
// that runs the same argv when pasted (and that `runtime add --command`
// reads back): words of plain characters stay as they are, any other word
// is single-quoted, a single quote in it written '"'"'. Control characters
// stay inside the quotes; a terminal shows them escaped (pkg/output), so
// such a line is for reading, not pasting.
func CommandLine(binary string, args []string) string {
	var b strings.Builder
	b.WriteString(QuoteArg(binary))
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(QuoteArg(a))
	}
	return b.String()
}

// QuoteArg quotes one word of a command line for a POSIX shell when it
// needs it (see CommandLine).
func QuoteArg(s string) string {
	plain := s != ""
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-./=:@%+,", c) >= 0
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Refs returns the refs of rts in order.
func Refs(rts []Runtime) []string {
	out := make([]string, len(rts))
	for i, r := range rts {
		out[i] = r.Ref
	}
	return out
}

// Ptr returns a pointer to v; handy for ExitCode, Priority and CheckRequired.
func Ptr[T any](v T) *T { return &v }
