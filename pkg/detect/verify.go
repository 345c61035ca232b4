package detect

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/attune-automation/attunectl/pkg/runtimes"
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
func Verify(ctx context.Context, rts []runtimes.Runtime, opts Options) Result {
	start := time.Now()
	e := newEngine(opts)
	res := Result{Runtimes: make([]RuntimeResult, len(rts)), Versions: map[string]string{}}
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
	env := scrubEnv(opts.Environ(), opts.PassthroughEnv)
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
		allow:  newAllowList(opts.AllowedBinaries),
		sem:    make(chan struct{}, opts.MaxParallel),
		flight: map[string]*flight{},
	}
}

func (e *engine) verifyRuntime(ctx context.Context, rt runtimes.Runtime) RuntimeResult {
	start := time.Now()
	rr := RuntimeResult{Ref: rt.Ref, Name: rt.Name, Commands: []CommandResult{}}
	defer func() { rr.Duration = time.Since(start) }()
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
	}
	for _, c := range rt.Verification.SortedCommands() {
		cr := e.runCommand(ctx, c)
		rr.Commands = append(rr.Commands, cr)
		if cr.OK() {
			rr.Available, rr.Via, rr.Version = true, cr.CommandLine(), cr.Version
			rr.Duration = time.Since(start)
			return rr
		}
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
	var re *regexp.Regexp
	if c.Pattern != "" {
		var err error
		if re, err = regexp.Compile(c.Pattern); err != nil {
			cr.Reason = fmt.Sprintf("invalid pattern `%s`: %v", c.Pattern, err)
			return cr
		}
	}
	out, cached := e.execOnce(ctx, c.Binary, c.Args)
	cr.Path, cr.Ran, cr.Duration, cr.Cached, cr.Truncated = out.path, out.ran, out.duration, cached, out.truncated
	if out.ran {
		cr.ExitCode = out.exitCode
	}
	combined := append(append([]byte{}, out.stdout...), out.stderr...)
	cr.Version = versionRE.FindString(string(combined))
	if re != nil && out.ran {
		cr.Matched = re.Match(combined)
	}
	switch {
	case out.reason != "":
		cr.Reason = out.reason
	case out.exitCode != cr.ExpectedExit:
		cr.Reason = fmt.Sprintf("exit %d, expected %d", out.exitCode, cr.ExpectedExit)
	case re != nil && !cr.Matched:
		cr.Reason = fmt.Sprintf("pattern `%s` did not match", c.Pattern)
	}
	return cr
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
			return execOutcome{reason: "canceled: " + ctx.Err().Error()}, false
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
	allowed := e.allow.allowsName(binary)
	var path string
	if bare {
		p, err := e.look(binary)
		if err == nil {
			path = p
		}
		if !allowed && path != "" {
			allowed = e.allow.allowsPath(path)
		}
		if !allowed {
			return execOutcome{reason: "not in allowed_binaries"}
		}
		if path == "" {
			return execOutcome{reason: "not found on PATH"}
		}
	} else {
		if !allowed {
			return execOutcome{reason: "not in allowed_binaries"}
		}
		if reason := checkExecutable(binary); reason != "" {
			return execOutcome{reason: reason}
		}
		path = binary
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return execOutcome{path: path, reason: "canceled: " + ctx.Err().Error()}
	}
	defer func() { <-e.sem }()
	return runProcess(ctx, path, binary, args, e.env, e.opts.Timeout, e.opts.MaxOutput)
}

// allowList implements Options.AllowedBinaries.
type allowList struct {
	enabled bool
	names   map[string]bool
	paths   map[string]bool
}

func newAllowList(entries []string) allowList {
	a := allowList{names: map[string]bool{}, paths: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		a.enabled = true
		switch {
		case filepath.IsAbs(e):
			a.paths[filepath.Clean(e)] = true
		case !strings.Contains(e, "/"):
			a.names[e] = true
		default:
			// A relative path can never match: keep the list enabled so it
			// still refuses everything it does not name.
		}
	}
	return a
}

// allowsName reports whether the binary as written is allowed.
func (a allowList) allowsName(binary string) bool {
	if !a.enabled {
		return true
	}
	if filepath.IsAbs(binary) {
		return a.paths[binary]
	}
	return a.names[binary]
}

func (a allowList) allowsPath(resolved string) bool {
	return a.enabled && a.paths[resolved]
}
