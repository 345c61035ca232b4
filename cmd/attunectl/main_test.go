package main

// End-to-end tests run the built binary as an operator would: flags, exit
// statuses, stdout and stderr, signals. Each test gets a fresh migrated
// database from pkg/dbtest.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

func TestMain(m *testing.M) {
	dbtest.Main(m, func() {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
	})
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
	buildOut  []byte
)

// binary builds attunectl once per test binary.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "attunectl-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "attunectl")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building attunectl: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// result is what one invocation printed and returned.
type result struct {
	Stdout, Stderr string
	Code           int
}

// env returns a clean environment for the binary: no ATTUNE_ variables from
// the developer's shell, a private HOME, no colour, and the given extras.
func env(t testing.TB, extra ...string) []string {
	t.Helper()
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ATTUNE") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "NO_COLOR=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "HOME="+t.TempDir(), "NO_COLOR=1")
	return append(append(out, selfRunAs()...), extra...)
}

// selfRunAs is the setting that runs commands from the database as the test
// process itself: as root, sensor.run_as root on purpose (the tests' sensor
// programs live under temporary directories no other user can enter; the
// tests of other identities set their own); as an ordinary user nothing,
// which means that user.
func selfRunAs() []string {
	if os.Geteuid() == 0 {
		return []string{"ATTUNE__SENSOR__RUN_AS=root"}
	}
	return nil
}

// embeddedEnv is env with no database URL and an embedded data directory of
// the test's own, under /tmp and traversable by the server's user when the
// tests run as root (t.TempDir() is 0700). The server is stopped and its
// data removed when the test ends.
func embeddedEnv(t testing.TB) []string {
	t.Helper()
	dataRoot, err := os.MkdirTemp("", "aemb-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dataRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataRoot) })
	e := env(t, "ATTUNE__EMBEDDED__DATA_DIR="+filepath.Join(dataRoot, "pg"))
	// --force: the test is over, and a sensor worker it started may still
	// be disconnecting; the server must not outlive the test.
	t.Cleanup(func() { run(t, e, "embedded", "stop", "--force") })
	return e
}

// dbEnv is env pointing attunectl at a fresh migrated database.
func dbEnv(t testing.TB, db *dbtest.DB, extra ...string) []string {
	return env(t, append([]string{"ATTUNE__DATABASE__URL=" + db.URL}, extra...)...)
}

// run runs attunectl to completion with stdin empty, in a temporary
// directory (so no ./config.yaml is picked up).
func run(t testing.TB, environ []string, args ...string) result {
	t.Helper()
	return runIn(t, t.TempDir(), environ, "", args...)
}

// runIn runs attunectl in dir with the given stdin.
func runIn(t testing.TB, dir string, environ []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Dir = dir
	cmd.Env = environ
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running attunectl %v: %v", args, err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

// proc is a long-running attunectl (sensor run, worker list --watch).
type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

// start starts attunectl in the background; t.Cleanup kills it if the test
// did not wait for it.
func start(t testing.TB, environ []string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = environ
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting attunectl %v: %v", args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// signal sends sig to the process.
func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling attunectl: %v", err)
	}
}

// wait waits up to d for the process to exit and returns its exit status.
func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("attunectl did not exit within %s\nstdout:\n%s\nstderr:\n%s", d, p.stdout, p.stderr)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("attunectl: %v", p.err)
	return -1
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer = testsupport.SyncBuffer
