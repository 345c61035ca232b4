package detect

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/attune-automation/attunectl/pkg/sandbox"
)

// versionRE finds the first N.N or N.N.N in a command's output.
var versionRE = regexp.MustCompile(`\d+\.\d+(?:\.\d+)?`)

// Verify checks each runtime on this host. Runtimes are verified
// concurrently; within one runtime the commands run in SortedCommands order
// and the first success wins. Identical (binary, args) pairs run once per
// call, whichever runtime asks first; the others reuse that process's exit
// code and output (Cached) and apply their own exit_code and pattern.
//
// A runtime without verification metadata is unavailable ("no verification
// metadata"); one with always_available (or check_required: false) is
// available via "always" without running anything. The returned Result has
// no Source: Detect sets it, and `runtime verify -f` sets SourceFile.
//
// Commands run in the sandbox of opts (RunAs, Limits); when it cannot be
// set up (as root without RunAs), no command runs and every runtime that
// needs one says why. The whole call is bounded by opts.Deadline: commands
// that have not started by then are "not run", running ones are stopped,
// both marked Transient.
func Verify(ctx context.Context, rts []runtimes.Runtime, opts Options) Result {
	start := time.Now()
	e := newEngine(opts)
	res := Result{Runtimes: make([]RuntimeResult, len(rts)), Versions: map[string]string{}}
	if e.sb != nil {
		u := e.sb.User()
		res.RunAs, res.OtherUser = &u, e.sb.SwitchesUser()
	}
	ctx, cancel := context.WithTimeoutCause(ctx, e.opts.Deadline, deadlineError{e.opts.Deadline})
	defer cancel()
	var wg sync.WaitGroup
	for i := range rts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Runtimes[i] = e.verifyRuntime(ctx, rts[i])
		}()
	}
	wg.Wait()
	var names []string
	for i, rr := range res.Runtimes {
		if !rr.Available {
			continue
		}
		name := rts[i].DetectedName()
		names = append(names, name)
		if rr.Version != "" {
			if _, dup := res.Versions[name]; !dup {
				res.Versions[name] = rr.Version
			}
		}
	}
	res.Available = Normalize(names)
	res.DeadlineReached = errors.As(context.Cause(ctx), new(deadlineError))
	res.Duration = time.Since(start)
	return res
}

// engine holds what one Verify call shares: options, the scrubbed
// environment, the allow-list, the process cache and the parallelism bound.
type engine struct {
	opts   Options
	env    []string
	look   func(string) (string, error)
	allow  allowList
	sb     *sandbox.Sandbox
	sbErr  error
	sem    chan struct{}
	mu     sync.Mutex
	flight map[string]*flight
}

// flight is one (binary, args) execution shared by every command asking for it.
type flight struct {
	done chan struct{}
	out  execOutcome
}

func newEngine(opts Options) *engine {
	opts = opts.withDefaults()
	sb, sbErr := opts.Sandbox()
	env := scrubEnv(opts.Environ(), opts.PassthroughEnv)
	if sb != nil {
		env = sb.Env(opts.Environ(), opts.PassthroughEnv)
	}
	look := opts.LookPath
	if look == nil {
		pathEnv := ""
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				pathEnv = v
			}
		}
		look = func(name string) (string, error) { return lookPathIn(pathEnv, name) }
	}
	return &engine{
		opts:   opts,
		env:    env,
		look:   look,
		allow:  newAllowList(opts.AllowedBinaries, opts.PinnedCommands),
		sb:     sb,
		sbErr:  sbErr,
		sem:    make(chan struct{}, opts.MaxParallel),
		flight: map[string]*flight{},
	}
}

func (e *engine) verifyRuntime(ctx context.Context, rt runtimes.Runtime) RuntimeResult {
	rr := e.verifyCommands(ctx, rt)
	// Duration is how long its commands ran, not how long it waited for a
	// free slot (MaxParallel) or for another runtime running the same
	// command: what TIME shows and what an operator compares to the timeout.
	for _, c := range rr.Commands {
		rr.Duration += c.Duration
	}
	return rr
}

func (e *engine) verifyCommands(ctx context.Context, rt runtimes.Runtime) RuntimeResult {
	rr := RuntimeResult{Ref: rt.Ref, Name: rt.Name, Commands: []CommandResult{}}
	switch {
	case rt.VerificationProblem != "":
		rr.Reason = rt.VerificationProblem
		return rr
	case rt.Verification == nil:
		// Say how to add it: rows Attune or an older tool wrote often have none.
		rr.Reason = "no verification metadata (add it: attunectl runtime list " + rt.Ref + " -o yaml > rt.yaml, add a verification: section, attunectl runtime add --update -f rt.yaml)"
		return rr
	case rt.Verification.Always():
		rr.Available, rr.Via = true, "always"
		return rr
	case len(rt.Verification.Commands) == 0:
		rr.Reason = "no verification commands"
		return rr
	case len(rt.Verification.Commands) > runtimes.MaxCommands:
		// `runtime add` refuses this; a row written by someone else gets
		// the same limit here.
		rr.Reason = fmt.Sprintf("%d verification commands, more than the limit of %d: none was run", len(rt.Verification.Commands), runtimes.MaxCommands)
		return rr
	case e.sbErr != nil:
		rr.Reason = "not run: " + e.sbErr.Error()
		rr.Transient = sandbox.IsTransient(e.sbErr)
		return rr
	}
	for _, c := range rt.Verification.SortedCommands() {
		cr := e.runCommand(ctx, c)
		rr.Commands = append(rr.Commands, cr)
		if cr.OK() {
			rr.Available, rr.Via, rr.Version = true, cr.CommandLine(), cr.Version
			return rr
		}
	}
	for _, c := range rr.Commands {
		rr.Transient = rr.Transient || c.Transient
	}
	if len(rr.Commands) == 1 {
		rr.Reason = rr.Commands[0].Reason
	} else {
		parts := make([]string, len(rr.Commands))
		for i, c := range rr.Commands {
			parts[i] = c.CommandLine() + ": " + c.Reason
		}
		rr.Reason = strings.Join(parts, "; ")
	}
	return rr
}

// runCommand checks, runs (once per identical argv) and judges one command.
func (e *engine) runCommand(ctx context.Context, c runtimes.Command) CommandResult {
	cr := CommandResult{
		Binary:       c.Binary,
		Args:         append([]string{}, c.Args...),
		ExitCode:     -1,
		ExpectedExit: c.ExpectedExit(),
		Pattern:      c.Pattern,
		Optional:     c.Optional,
	}
	for _, a := range c.Args {
		if strings.ContainsRune(a, 0) {
			cr.Reason = "an argument contains a NUL byte"
			return cr
		}
	}
	if len(c.Pattern) > runtimes.MaxPatternLen {
		cr.Reason = fmt.Sprintf("pattern longer than %d bytes: not run", runtimes.MaxPatternLen)
		return cr
	}
	var re *regexp.Regexp
	if c.Pattern != "" {
		var err error
		if re, err = regexp.Compile(c.Pattern); err != nil {
			cr.Reason = fmt.Sprintf("invalid pattern `%s`: %v", c.Pattern, err)
			return cr
		}
		if n := patternSize(c.Pattern); n > MaxPatternInstructions {
			cr.Reason = fmt.Sprintf("pattern too complex: %d instructions, more than the limit of %d: not run", n, MaxPatternInstructions)
			return cr
		}
	}
	if err := ctx.Err(); err != nil {
		cr.Reason, cr.Transient, cr.NotRun = stopReason(ctx, "not run")
		return cr
	}
	out, cached := e.execOnce(ctx, c.Binary, c.Args)
	cr.Path, cr.Ran, cr.Duration, cr.Cached, cr.Truncated = out.path, out.ran, out.duration, cached, out.truncated
	cr.Transient, cr.NotRun = out.transient, out.notRun
	if out.ran {
		cr.ExitCode = out.exitCode
	}
	combined := append(append([]byte{}, out.stdout...), out.stderr...)
	cr.Version = versionRE.FindString(string(combined))
	matchProblem := ""
	if re != nil && out.ran {
		// Matching counts against the command's timeout (and the detection
		// deadline): a pattern that is slow on this output fails the
		// command instead of holding detection.
		until := out.started.Add(e.opts.Timeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
			until = dl
		}
		// A command that used its whole time (timed out) still gets its
		// output searched, briefly: Matched then tells whether the
		// version was printed before it hung.
		until = later(until, time.Now().Add(matchFloor))
		var finished bool
		cr.Matched, finished = matchBefore(re, combined, until)
		if !finished {
			matchProblem = fmt.Sprintf("pattern `%s` did not finish matching within the %s timeout", c.Pattern, e.opts.Timeout)
		}
	}
	switch {
	case out.reason != "":
		cr.Reason = out.reason
	case matchProblem != "":
		cr.Reason = matchProblem
	case out.exitCode != cr.ExpectedExit:
		cr.Reason = fmt.Sprintf("exit %d, expected %d", out.exitCode, cr.ExpectedExit)
	case re != nil && !cr.Matched:
		cr.Reason = fmt.Sprintf("pattern `%s` did not match", c.Pattern)
	}
	return cr
}

// matchFloor is the least time a pattern gets to match, even when the
// command's timeout has run out.
const matchFloor = 20 * time.Millisecond

// MaxPatternInstructions caps the compiled size of a pattern. RE2 matching
// costs up to (instructions × input bytes): at 500 and twice 64 KiB of
// output that is under a second of CPU, where a 19-byte pattern such as
// `(?:(?:a*){30}){30}b` (1803 instructions) takes seconds. Version
// patterns are a few dozen instructions.
const MaxPatternInstructions = 500

// patternSize is the number of instructions of pattern's compiled program
// (0 when it does not compile; regexp.Compile reports that).
func patternSize(pattern string) int {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0
	}
	return len(prog.Inst)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// matchBefore runs re over b in a goroutine and waits until the deadline.
// When the deadline comes first it returns finished false; the abandoned
// match ends by itself (RE2 is linear: bounded by MaxPatternLen times
// twice MaxOutput, capped by MaxPatternInstructions) and its result is
// dropped.
func matchBefore(re *regexp.Regexp, b []byte, deadline time.Time) (matched, finished bool) {
	done := make(chan bool, 1)
	go func() { done <- re.Match(b) }()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case m := <-done:
		return m, true
	case <-t.C:
		select {
		case m := <-done:
			return m, true
		default:
			return false, false
		}
	}
}

// execOnce runs binary+args, or waits for and reuses the run another
// goroutine started for the same argv. Arguments never contain NUL here,
// so the key is unambiguous.
func (e *engine) execOnce(ctx context.Context, binary string, args []string) (execOutcome, bool) {
	key := binary + "\x00" + strings.Join(args, "\x00")
	e.mu.Lock()
	if f, ok := e.flight[key]; ok {
		e.mu.Unlock()
		select {
		case <-f.done:
			return f.out, true
		case <-ctx.Done():
			out := execOutcome{exitCode: -1}
			out.reason, out.transient, out.notRun = stopReason(ctx, "not run")
			return out, false
		}
	}
	f := &flight{done: make(chan struct{})}
	e.flight[key] = f
	e.mu.Unlock()
	f.out = e.exec(ctx, binary, args)
	close(f.done)
	return f.out, false
}

// exec applies the binary rules, the allow-list and the lookup, then runs.
func (e *engine) exec(ctx context.Context, binary string, args []string) execOutcome {
	if err := runtimes.ValidateBinary(binary); err != nil {
		return execOutcome{reason: "binary must be a bare name or an absolute path: " + err.Error()}
	}
	bare := !strings.HasPrefix(binary, "/")
	var path string
	if bare {
		if p, err := e.look(binary); err == nil {
			path = p
		}
	}
	if !e.allow.allows(binary, path, args) {
		return execOutcome{reason: e.allow.refusal()}
	}
	if bare {
		if path == "" {
			return execOutcome{reason: "not found on PATH"}
		}
	} else {
		if reason := checkExecutable(binary); reason != "" {
			return execOutcome{reason: reason}
		}
		path = binary
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		out := execOutcome{path: path, exitCode: -1}
		out.reason, out.transient, out.notRun = stopReason(ctx, "not run")
		return out
	}
	defer func() { <-e.sem }()
	return runProcess(ctx, e.sb, path, binary, args, e.env, e.opts.Timeout, e.opts.MaxOutput)
}

// allowList implements Options.AllowedBinaries and Options.PinnedCommands.
type allowList struct {
	// enabled: AllowedBinaries is set (even to an empty list) or a
	// command is pinned. Then only what they name runs.
	enabled bool
	names   map[string]bool
	paths   map[string]bool
	pinned  []pinnedCommand
}

// pinnedCommand is one exact command: a bare name or absolute path, and
// the exact arguments.
type pinnedCommand struct {
	binary string
	args   []string
}

func newAllowList(entries, pinned []string) allowList {
	a := allowList{enabled: entries != nil, names: map[string]bool{}, paths: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case filepath.IsAbs(e):
			a.paths[filepath.Clean(e)] = true
		case !strings.Contains(e, "/"):
			a.names[e] = true
		default:
			// A relative path can never match: the list still refuses
			// everything it does not name.
		}
	}
	for _, p := range pinned {
		f := strings.Fields(p)
		if len(f) == 0 {
			continue
		}
		a.enabled = true
		b := f[0]
		if filepath.IsAbs(b) {
			b = filepath.Clean(b)
		}
		a.pinned = append(a.pinned, pinnedCommand{binary: b, args: f[1:]})
	}
	return a
}

// allows reports whether binary (as written; resolved is its PATH lookup,
// "" for an absolute binary or when not found) with args may run. A bare
// entry allows the bare name; an absolute entry allows that path, written
// or resolved. Symlinks are not resolved.
func (a allowList) allows(binary, resolved string, args []string) bool {
	if !a.enabled {
		return true
	}
	if a.matches(binary, resolved, a.names, a.paths) {
		return true
	}
	for _, p := range a.pinned {
		if slices.Equal(p.args, args) && a.matches(binary, resolved, map[string]bool{p.binary: true}, map[string]bool{p.binary: true}) {
			return true
		}
	}
	return false
}

func (a allowList) matches(binary, resolved string, names, paths map[string]bool) bool {
	if filepath.IsAbs(binary) {
		return paths[binary]
	}
	return names[binary] || (resolved != "" && paths[resolved])
}

// Allows reports whether opts' allow-list (sensor.verification.
// allowed_binaries and pinned_commands) lets binary run with args, and if
// not, says why. resolved is binary's PATH lookup ("" when it has none).
// A sensor's interpreter is held to the same list as verification
// commands: a row of the database names both.
func (o Options) Allows(binary, resolved string, args []string) (bool, string) {
	a := newAllowList(o.AllowedBinaries, o.PinnedCommands)
	if a.allows(binary, resolved, args) {
		return true, ""
	}
	return false, a.refusal()
}

func (a allowList) refusal() string {
	if len(a.pinned) > 0 {
		return "not in allowed_binaries or pinned_commands"
	}
	return "not in allowed_binaries"
}
