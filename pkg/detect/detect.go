// Package detect is attunectl's one runtime detection engine: `sensor run`
// uses it to decide which runtimes a sensor worker reports, and `runtime
// verify` uses exactly the same code to dry-run that decision on a host.
//
// Precedence (Detect), highest first:
//  1. ATTUNE_SENSOR_RUNTIMES, comma separated: names are trimmed,
//     lower-cased, empties dropped, deduplicated and sorted; the database
//     is not consulted;
//  2. the config's sensor.capabilities.runtimes, normalised the same way;
//     the database is not consulted;
//  3. the database's sensor runtimes, each verified on this host (Verify).
//
// A source that yields no names after normalisation (e.g. the variable is
// set to "" or " , ") counts as not set, and the next source is used.
//
// Verification commands come from a database shared by every host, so the
// engine treats them as untrusted input: argv only, never a shell; a binary
// must be a bare name (looked up on the scrubbed PATH; relative and empty
// PATH entries are skipped) or a clean absolute path; output is read
// through a cap; the environment is scrubbed; an optional allow-list
// (AllowedBinaries, PinnedCommands; an empty list allows nothing) refuses
// other commands before they start. Commands run with "/" as working
// directory and /dev/null as stdin, so the result does not depend on where
// attunectl was started.
//
// Every command runs in pkg/sandbox: as Options.RunAs (as root it must be
// set; the Result says whom), with resource limits, no_new_privs, under a
// subreaper that kills everything the command started when it ends or its
// timeout fires, and with attunectl non-dumpable so the command cannot read
// attunectl's environment. Matching the pattern counts against the
// command's timeout. A whole detection is bounded by Options.Deadline
// (15 s): what has not run by then is "not run". Rows read from the
// database get runtime add's limits (32 commands, 4 KiB patterns).
//
// Failures that are the host's and passing (EMFILE, ENFILE, ENOMEM, EAGAIN
// on fork, the deadline) are marked Transient, so that a sensor worker
// keeps its last good result for that runtime (sensor.KeepLastGood)
// instead of withdrawing it.
//
// Output: stdout and stderr are each kept up to Options.MaxOutput bytes and
// drained beyond that. A command that prints far more and then exits still
// succeeds when its pattern is in what was kept; one that prints forever
// is ended by its timeout (its result then says "timed out after 5s", with
// Matched telling whether the pattern was in the kept output). The version
// reported is the first N.N or N.N.N in stdout followed by stderr.
//
// Every outcome is data (Result, RuntimeResult, CommandResult) with the
// reason in words: "not found on PATH", "exit 1, expected 0",
// "pattern `Python 3\.` did not match", "timed out after 5s",
// "not in allowed_binaries", "binary must be a bare name or an absolute
// path: …". `runtime verify` prints it; `sensor run` registers Available.
package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/attune-automation/attunectl/pkg/sandbox"
)

// Defaults for Options.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxOutput   = 64 << 10
	DefaultMaxParallel = 32
	DefaultDeadline    = 15 * time.Second
)

// Options configure the engine. The zero value is usable.
type Options struct {
	// Timeout per command; default 5s.
	Timeout time.Duration
	// MaxOutput is how many bytes of stdout, and separately of stderr, are
	// kept per command (default 64 KiB). The rest is read and discarded so
	// the command is not blocked on a full pipe; a command that prints
	// forever is stopped by its timeout.
	MaxOutput int
	// PassthroughEnv names variables passed to commands in addition to
	// PATH, HOME, LANG, LC_*, TZ and TMPDIR (exact names, from
	// sensor.passthrough_env). Whatever is listed here is the operator's
	// explicit choice.
	PassthroughEnv []string
	// AllowedBinaries, when not nil, is the only set of binaries that may
	// run (sensor.verification.allowed_binaries). nil means the list is
	// not set: every binary may run (unless PinnedCommands is set). An
	// empty, non-nil list allows nothing: the list fails closed. A bare-name entry
	// ("python3") allows a command whose binary is that bare name, looked up
	// on PATH; an absolute entry ("/usr/bin/python3") allows a command whose
	// binary is that path or a bare name that resolves to exactly that path.
	// A bare entry does not allow an absolute binary with the same base name
	// (/tmp/x/python3 is not python3). Symlinks are not resolved.
	AllowedBinaries []string
	// PinnedCommands are exact commands that may run even when their
	// binary is not on AllowedBinaries (sensor.verification.pinned_commands):
	// each is "binary arg1 arg2 …", split on blanks, and allows exactly
	// that binary (same rules as AllowedBinaries) with exactly those
	// arguments. Setting any turns the allow-list on.
	PinnedCommands []string
	// RunAs is the user commands run as (sensor.run_as): see
	// sandbox.Config.RunAs. As root it must be set ("root" on purpose).
	RunAs string
	// Path is the PATH of commands run as another user (sensor.path).
	Path string
	// Hide are paths commands must not read (sandbox.Config.Hide).
	Hide []string
	// Limits are the resource limits of every command (sensor.limits.*);
	// the zero value means sandbox.DefaultLimits.
	Limits sandbox.Limits
	// Deadline bounds a whole Verify (sensor.verification.deadline,
	// default 15s): commands not started by then are reported "not run",
	// running ones are stopped.
	Deadline time.Duration
	// Environ gives the environment to scrub; default os.Environ.
	Environ func() []string
	// LookPath resolves a bare name; default: search the scrubbed PATH
	// (absolute entries only) for an executable regular file.
	LookPath func(string) (string, error)
	// MaxParallel bounds how many commands run at once; default 32.
	MaxParallel int
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if o.Environ == nil {
		o.Environ = os.Environ
	}
	if o.MaxParallel <= 0 {
		o.MaxParallel = DefaultMaxParallel
	}
	if o.Deadline <= 0 {
		o.Deadline = DefaultDeadline
	}
	if o.Limits == (sandbox.Limits{}) {
		o.Limits = sandbox.DefaultLimits()
	}
	return o
}

// Sandbox sets up the sandbox commands run in: RunAs resolved, the limits.
// As root without RunAs it picks a dynamic uid (see pkg/sandbox); callers
// that run commands (runtime verify, sensor run) call it first to refuse a
// bad RunAs before anything runs.
func (o Options) Sandbox() (*sandbox.Sandbox, error) {
	o = o.withDefaults()
	sb, err := sandbox.New(sandbox.Config{RunAs: o.RunAs, Limits: o.Limits, Path: o.Path, Hide: o.Hide})
	if err != nil {
		return nil, fmt.Errorf("running verification commands: %w", err)
	}
	return sb, nil
}

// Source says where a detection result came from.
type Source string

// Sources of a Result.
const (
	SourceEnv      Source = "env"      // ATTUNE_SENSOR_RUNTIMES
	SourceConfig   Source = "config"   // sensor.capabilities.runtimes
	SourceDatabase Source = "database" // the runtime table, verified on this host
	SourceFile     Source = "file"     // a manifest (`runtime verify -f`); set by the caller of Verify
)

// EnvVar is the variable that overrides detection.
const EnvVar = "ATTUNE_SENSOR_RUNTIMES"

// Input is what Detect chooses from.
type Input struct {
	// EnvRuntimes is the raw value of ATTUNE_SENSOR_RUNTIMES ("" when unset).
	EnvRuntimes string
	// ConfigRuntimes is sensor.capabilities.runtimes.
	ConfigRuntimes []string
	// Load returns the runtimes to verify (usually runtimes.SensorRuntimes);
	// it is called only when neither the environment nor the config decide.
	Load func(ctx context.Context) ([]runtimes.Runtime, error)
}

// Result is the outcome of a detection: which runtimes are available and,
// for database detection, why each one is or is not.
type Result struct {
	Source Source `json:"source"`
	// Runtimes holds one entry per verified runtime, in the order given
	// (empty for env and config sources).
	Runtimes []RuntimeResult `json:"runtimes"`
	// Available are the detected names (lower(runtime.name)), sorted, deduplicated.
	Available []string `json:"available"`
	// Versions maps a detected name to the version its successful command printed.
	Versions map[string]string `json:"versions"`
	// RunAs is the user the commands ran as (nil when none could run, or
	// for env and config sources, which run nothing).
	RunAs *sandbox.User `json:"run_as,omitempty"`
	// OtherUser is true when RunAs is another user than attunectl's own
	// (the commands' results are that user's, not the invoking user's).
	OtherUser bool `json:"-"`
	// DeadlineReached is true when Options.Deadline ended the detection
	// before every command had finished.
	DeadlineReached bool          `json:"deadline_reached,omitempty"`
	Duration        time.Duration `json:"-"`
}

// RuntimeResult is one runtime's outcome.
type RuntimeResult struct {
	Ref       string `json:"ref"`
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Via is "always" or the command line that succeeded.
	Via     string `json:"via,omitempty"`
	Version string `json:"version,omitempty"`
	// Reason says why the runtime is unavailable ("" when available).
	Reason string `json:"reason,omitempty"`
	// Transient is true when the runtime is unavailable and one of its
	// commands failed for a local, passing reason (EMFILE, ENOMEM, EAGAIN
	// on fork, the detection deadline): the result says nothing about the
	// runtime, and a sensor worker keeps the last good one
	// (sensor.KeepLastGood).
	Transient bool `json:"transient,omitempty"`
	// Duration is how long its commands ran (duration_ms): the sum of
	// their Durations, never the time spent waiting for a free slot or for
	// another runtime running the same command.
	Duration time.Duration   `json:"-"`
	Commands []CommandResult `json:"commands"`
}

// CommandResult is one verification command's outcome.
type CommandResult struct {
	Binary string   `json:"binary"`
	Args   []string `json:"args"`
	// Path is the resolved executable ("" when not found or refused).
	Path string `json:"path,omitempty"`
	// Ran is true when the process was started.
	Ran bool `json:"ran"`
	// ExitCode is the exit status, -1 when the command did not run or was
	// killed by a signal (including the timeout).
	ExitCode     int    `json:"exit_code"`
	ExpectedExit int    `json:"expected_exit"`
	Pattern      string `json:"pattern,omitempty"`
	// Matched is true when a pattern is set and matched the output (it is
	// computed even when the command failed otherwise, e.g. timed out).
	Matched bool `json:"matched"`
	// Version is the first N.N or N.N.N in stdout followed by stderr.
	Version  string        `json:"version,omitempty"`
	Duration time.Duration `json:"-"`
	// Reason is "" on success, else why the command failed.
	Reason string `json:"reason,omitempty"`
	// Cached is true when another runtime ran the same (binary, args) in
	// this detection and this result reuses its process.
	Cached bool `json:"cached"`
	// Truncated is true when stdout or stderr exceeded MaxOutput.
	Truncated bool `json:"truncated,omitempty"`
	Optional  bool `json:"optional,omitempty"`
	// Transient: the command could not run or finish for a local, passing
	// reason (see RuntimeResult.Transient).
	Transient bool `json:"transient,omitempty"`
	// NotRun: the command was never started (the detection deadline came
	// first, or detection was canceled).
	NotRun bool `json:"not_run,omitempty"`
}

// OK reports whether the command succeeded.
func (c CommandResult) OK() bool { return c.Reason == "" }

// CommandLine is the command as typed: `python3 --version`.
func (c CommandResult) CommandLine() string { return runtimes.CommandLine(c.Binary, c.Args) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MarshalJSON adds duration_ms.
func (c CommandResult) MarshalJSON() ([]byte, error) {
	type plain CommandResult
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(c), ms(c.Duration)})
}

// MarshalJSON adds duration_ms.
func (r RuntimeResult) MarshalJSON() ([]byte, error) {
	type plain RuntimeResult
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(r), ms(r.Duration)})
}

// MarshalJSON adds duration_ms.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(r), ms(r.Duration)})
}

// AllAvailable reports whether every verified runtime is available
// (`runtime verify` exits 3 otherwise).
func (r Result) AllAvailable() bool {
	for _, rt := range r.Runtimes {
		if !rt.Available {
			return false
		}
	}
	return true
}

// Unavailable returns the runtimes that are not available.
func (r Result) Unavailable() []RuntimeResult {
	var out []RuntimeResult
	for _, rt := range r.Runtimes {
		if !rt.Available {
			out = append(out, rt)
		}
	}
	return out
}

// ParseList parses ATTUNE_SENSOR_RUNTIMES: comma separated, then Normalize.
func ParseList(s string) []string {
	return Normalize(strings.Split(s, ","))
}

// Normalize trims and lower-cases names, drops empties and duplicates, and
// sorts them.
func Normalize(names []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Detect applies the precedence: environment, then config, then the
// database (in.Load, then Verify). The error is only about loading the
// runtimes; an unavailable runtime is data in the Result.
func Detect(ctx context.Context, in Input, opts Options) (Result, error) {
	start := time.Now()
	if names := ParseList(in.EnvRuntimes); len(names) > 0 {
		return Result{Source: SourceEnv, Available: names, Versions: map[string]string{}, Duration: time.Since(start)}, nil
	}
	if names := Normalize(in.ConfigRuntimes); len(names) > 0 {
		return Result{Source: SourceConfig, Available: names, Versions: map[string]string{}, Duration: time.Since(start)}, nil
	}
	if in.Load == nil {
		return Result{}, errors.New("detecting runtimes: no runtime source: set ATTUNE_SENSOR_RUNTIMES or sensor.capabilities.runtimes, or connect a database")
	}
	if _, err := opts.Sandbox(); err != nil {
		return Result{}, fmt.Errorf("detecting runtimes: %w", err)
	}
	rts, err := in.Load(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("detecting runtimes: %w", err)
	}
	res := Verify(ctx, rts, opts)
	res.Source = SourceDatabase
	res.Duration = time.Since(start)
	return res, nil
}
