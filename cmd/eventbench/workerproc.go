package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
)

// workerProc is one real `attunectl sensor run` process.
type workerProc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// buildAttunectl builds the binary into dir unless path names one already.
func buildAttunectl(ctx context.Context, path, dir string) (string, error) {
	if path != "" {
		return path, nil
	}
	bin := filepath.Join(dir, "attunectl")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/attunectl")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building attunectl: %w (run from the repository root, or pass --attunectl)", err)
	}
	return bin, nil
}

// workerEnv is the environment of a worker: this process's, with the
// database and the given settings.
func workerEnv(url, schema string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ATTUNE") {
			env = append(env, kv)
		}
	}
	env = append(env, "ATTUNE__DATABASE__URL="+url, "ATTUNE__DATABASE__SCHEMA="+schema)
	if os.Geteuid() == 0 {
		env = append(env, "ATTUNE__SENSOR__RUN_AS=root")
	}
	return append(env, extra...)
}

func startWorker(bin, dir, name string, env []string, args ...string) (*workerProc, error) {
	w := &workerProc{name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(bin, append([]string{"sensor", "run", "--name", name, "--host", "host-" + name}, args...)...)
	w.cmd.Dir = dir
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting worker %s: %w", name, err)
	}
	go func() {
		_ = w.cmd.Wait()
		close(w.done)
	}()
	return w, nil
}

// stop sends SIGTERM and waits up to d, then kills.
func (w *workerProc) stop(d time.Duration) {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(d):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

func (w *workerProc) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond every 50 ms until it holds, the worker exits or d passes.
func waitFor(ctx context.Context, d time.Duration, what string, ws []*workerProc, cond func() bool) error {
	end := time.Now().Add(d)
	for {
		if cond() {
			return nil
		}
		for _, w := range ws {
			if w.exited() {
				return fmt.Errorf("waiting for %s: worker %s exited:\n%s", what, w.name, w.out.String())
			}
		}
		if time.Now().After(end) {
			return fmt.Errorf("waiting for %s: not after %s", what, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// procStatus reads a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// migrated opens the benchmark's schema, dropped first, and migrates it;
// the returned function drops it again.
func migrated(ctx context.Context, url, schema string, poolSize int) (*database.DB, func(), error) {
	db, err := database.Open(ctx, database.Options{URL: url, Schema: schema, MaxConns: int32(poolSize)})
	if err != nil {
		return nil, nil, err
	}
	drop := func() {
		_, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+quoteIdent(schema)+" CASCADE")
	}
	drop()
	if err := database.MigrateUp(ctx, db); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrating: %w", err)
	}
	return db, func() { drop(); db.Close() }, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
