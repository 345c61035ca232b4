package sensorworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/attune-automation/attunectl/pkg/sandbox"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

// sandboxLauncher starts sensor processes through the sandbox that runs
// every command from the database: as sensor.run_as, under the subreaper
// helper with its limits, with the scrubbed environment plus the sensor
// contract's variables.
type sandboxLauncher struct {
	sb    *sandbox.Sandbox
	base  []string // the scrubbed environment
	allow func(binary, resolved string, args []string) (bool, string)
}

func newSandboxLauncher(sb *sandbox.Sandbox, environ, passthrough []string, allow func(string, string, []string) (bool, string)) *sandboxLauncher {
	return &sandboxLauncher{sb: sb, base: sb.Env(environ, passthrough), allow: allow}
}

// allowed holds argv to the allow-list, its binary resolved on the
// sensor's PATH: "" when it may run, else why not.
func (l *sandboxLauncher) allowed(argv []string) string {
	if l.allow == nil || len(argv) == 0 {
		return ""
	}
	resolved := argv[0]
	if !filepath.IsAbs(resolved) {
		resolved, _ = sandbox.LookPath(sandbox.PathOf(l.base), argv[0])
	}
	if ok, why := l.allow(argv[0], resolved, argv[1:]); !ok {
		return fmt.Sprintf("the command %s is %s (sensor.verification): a sensor's interpreter is held to the same allow-list as verification commands", argv[0], why)
	}
	return ""
}

func (l *sandboxLauncher) Launch(ctx context.Context, spec supervise.ProcessSpec) (supervise.Process, error) {
	if len(spec.Argv) == 0 {
		return nil, fmt.Errorf("empty command line")
	}
	env := append(slices.Clone(l.base), spec.Env...)
	path := spec.Argv[0]
	switch {
	case filepath.IsAbs(path):
	case strings.ContainsRune(path, '/'):
		return nil, fmt.Errorf("interpreter %q: give a bare name looked up on PATH or an absolute path", path)
	default:
		p, err := sandbox.LookPath(sandbox.PathOf(env), path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		path = p
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	p, err := l.sb.Start(ctx, sandbox.Spec{Path: path, Args: spec.Argv, Env: env, Dir: spec.Dir, Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%w: %s cannot run %s (sensor.run_as must be able to reach the interpreter and the entrypoint)", err, l.sb.User(), path)
		}
		return nil, err
	}
	return &sandboxProcess{p: p, out: outR, err: errR}, nil
}

// sandboxProcess is a sensor process in the sandbox. Its output pipes are
// closed by the reader at end of file (supervise's output pump).
type sandboxProcess struct {
	p        *sandbox.Process
	out, err *os.File
}

func (s *sandboxProcess) Stdout() io.Reader        { return s.out }
func (s *sandboxProcess) Stderr() io.Reader        { return s.err }
func (s *sandboxProcess) Wait() string             { return s.p.Wait().String() }
func (s *sandboxProcess) Stop(grace time.Duration) { s.p.Stop(grace) }
