package dbtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// Bouncer is a real PgBouncer in front of the test binary's shared server,
// in transaction pooling mode with PgBouncer's stock behaviour otherwise: in
// particular no ignore_startup_parameters, so a client that sends
// search_path, jit or statement_timeout at startup is refused, as in
// production. It listens on a free loopback port; every database of the
// shared server is reachable through it under its own name.
type Bouncer struct {
	Port    int
	User    string
	Config  string // the pgbouncer.ini it runs with
	LogFile string
	root    string
	cmd     *exec.Cmd
	done    chan struct{}
}

// URL is the plain URL of database dbname through the pooler: no
// parameters beyond sslmode, as an operator would write it.
func (b *Bouncer) URL(dbname string) string {
	return "postgres://" + url.User(b.User).String() + "@127.0.0.1:" + strconv.Itoa(b.Port) + "/" + url.PathEscape(dbname) + "?sslmode=disable"
}

// Log is what PgBouncer has logged so far, for failure messages.
func (b *Bouncer) Log() string {
	out, _ := os.ReadFile(b.LogFile)
	return string(out)
}

var bouncer struct {
	once sync.Once
	b    *Bouncer
	err  error
}

// PgBouncer starts (once per test binary) a PgBouncer in front of the shared
// server and returns it; Main stops it. A missing pgbouncer binary fails the
// test with how to install it: the PgBouncer tests never skip.
func PgBouncer(t testing.TB) *Bouncer {
	t.Helper()
	srv := Server(t)
	bouncer.once.Do(func() {
		onLastingThread(func() {
			bouncer.b, bouncer.err = startBouncer(srv.SocketDir(), srv.Port(), srvUser(srv.ConnString("postgres")), "")
			if bouncer.b != nil {
				bouncerRoot = bouncer.b.root
			}
		})
	})
	if bouncer.err != nil {
		t.Fatalf("dbtest: %v", bouncer.err)
	}
	return bouncer.b
}

// StartPgBouncer starts a PgBouncer of the test's own in front of the shared
// server, with the settings in extra (pgbouncer.ini lines) added to the
// [pgbouncer] section, e.g. "ignore_startup_parameters = jit". It is stopped
// when the test ends.
func StartPgBouncer(t testing.TB, extra string) *Bouncer {
	t.Helper()
	return StartPgBouncerFor(t, Server(t), extra)
}

// StartPgBouncerFor starts a PgBouncer of the test's own in front of srv
// (a server of the test's own, from NewServer, which the test may stop and
// restart), with the settings in extra as for StartPgBouncer.
func StartPgBouncerFor(t testing.TB, srv *embeddedpg.Server, extra string) *Bouncer {
	t.Helper()
	b, err := startBouncer(srv.SocketDir(), srv.Port(), srvUser(srv.ConnString("postgres")), extra)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		b.stop()
		os.RemoveAll(b.root)
	})
	return b
}

// NewPgBouncer gives the test a fresh migrated database (as New does) whose
// PoolerURL reaches it through the shared PgBouncer.
func NewPgBouncer(t testing.TB) *DB {
	t.Helper()
	b := PgBouncer(t)
	db := New(t)
	db.PoolerURL = b.URL(db.Name)
	return db
}

// NewPgBouncerEmpty is NewEmpty behind the shared PgBouncer.
func NewPgBouncerEmpty(t testing.TB) *DB {
	t.Helper()
	b := PgBouncer(t)
	db := NewEmpty(t)
	db.PoolerURL = b.URL(db.Name)
	return db
}

func srvUser(connString string) string {
	u, err := url.Parse(connString)
	if err != nil || u.User == nil {
		return "attune"
	}
	return u.User.Username()
}

// findPgBouncer looks on PATH and in /usr/sbin, where Debian installs it.
func findPgBouncer() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("pgbouncer not found on PATH or in /usr/sbin: the PgBouncer tests need it (Debian/Ubuntu: apt-get install pgbouncer; .ci/run installs it)")
}

func startBouncer(socketDir string, pgPort int, pgUser, extra string) (*Bouncer, error) {
	bin, err := findPgBouncer()
	if err != nil {
		return nil, err
	}
	root, err := makeRoot()
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			os.RemoveAll(root)
		}
	}()
	port, err := freePort("127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("finding a free port for pgbouncer: %w", err)
	}
	b := &Bouncer{root: root, Port: port, User: pgUser, Config: filepath.Join(root, "pgbouncer.ini"), LogFile: filepath.Join(root, "pgbouncer.log"), done: make(chan struct{})}
	users := filepath.Join(root, "userlist.txt")
	if err := os.WriteFile(users, []byte(strconv.Quote(pgUser)+` ""`+"\n"), 0o644); err != nil {
		return nil, err
	}
	// Everything not set here is PgBouncer's default; pool_mode is the
	// point, max_client_conn leaves room for parallel tests.
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%d user=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
admin_users = %s
%s
`, socketDir, pgPort, pgUser, port, users, pgUser, extra)
	if err := os.WriteFile(b.Config, []byte(ini), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(b.LogFile)
	if err != nil {
		return nil, err
	}
	args := []string{b.Config}
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root; -u drops to another user.
		runAs := ""
		for _, n := range []string{"postgres", "nobody"} {
			if u, err := user.Lookup(n); err == nil && u.Uid != "0" {
				runAs = n
				break
			}
		}
		if runAs == "" {
			return nil, errors.New("pgbouncer refuses to run as root and there is no postgres or nobody user to run it as")
		}
		args = append([]string{"-u", runAs}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	b.cmd = cmd
	go func() { _ = cmd.Wait(); logf.Close(); close(b.done) }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		select {
		case <-b.done:
			return nil, fmt.Errorf("pgbouncer exited at start:\n%s", b.Log())
		default:
		}
		conn, err := pgx.Connect(ctx, b.URL("postgres"))
		if err == nil {
			var one int
			err = conn.QueryRow(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol).Scan(&one)
			conn.Close(ctx)
			if err == nil {
				started = true
				return b, nil
			}
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	b.stop()
	return nil, fmt.Errorf("pgbouncer did not accept connections within 20s: %v\n%s", last, b.Log())
}

var bouncerRoot string

func (b *Bouncer) stop() {
	if b == nil || b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGINT) // immediate shutdown
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

func stopBouncer() {
	if bouncer.b != nil {
		bouncer.b.stop()
	}
	if bouncerRoot != "" && strings.HasPrefix(bouncerRoot, "/tmp/"+rootPrefix) {
		os.RemoveAll(bouncerRoot)
	}
}

// onLastingThread runs start on an OS thread that never exits, and returns
// when it did. The shared server and PgBouncer die with the test binary by
// a death signal (Pdeathsig), which the kernel sends when the thread that
// forked them ends — not the process: started from whichever test's
// goroutine came first, they could die with its thread.
func onLastingThread(start func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		start()
		close(done)
		select {}
	}()
	<-done
}
