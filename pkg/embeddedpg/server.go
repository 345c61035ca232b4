package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Server is a running PostgreSQL server on one data directory, started or
// adopted by Start.
type Server struct {
	opts Options // with every default filled in
	run  runAs

	// opMu serializes Stop, Kill and Restart.
	opMu sync.Mutex

	// mu guards the fields below: where the server is and, when this
	// process spawned it in the foreground, the child.
	mu        sync.Mutex
	pid       int
	port      int
	socketDir string
	listen    string // the server's first listen address, "" for socket only
	child     *child

	// createdDB is set when this Start created the database "attune".
	createdDB bool
	// started is set when this Start launched the server.
	started bool
}

// child is a postgres process this process spawned (Options.Foreground).
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result, valid after done
}

// Start makes sure a server runs on opts.DataDir and returns it. It creates
// the cluster (initdb) when the directory is missing or empty, starts the
// server unless one already runs there (postmaster.pid names a live process
// that accepts connections), waits until it accepts connections (bounded by
// ctx) and creates the database "attune" when missing.
//
// Start holds an exclusive lock on DataDir.lock while it works, so several
// processes or goroutines calling Start at once end with one server and all
// succeed. A Server returned for an adopted server has no child process;
// its Stop still stops the server. An adopted server keeps the port and
// socket it was started with; Port, SocketDir and ConnString report those
// (from its postmaster.pid), not opts.
func Start(ctx context.Context, opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := o.resolveBinDir(); err != nil {
		return nil, err
	}
	run, err := resolveRunAs(o.RunAsUser)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, run: run}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	o := s.opts
	if err := s.prepareDirs(); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, o.DataDir+".lock")
	if err != nil {
		return fmt.Errorf("starting postgresql in %s: %w", o.DataDir, err)
	}
	defer unlock()

	adopted, err := s.adopt(ctx)
	if err != nil {
		return err
	}
	if !adopted {
		if err := s.initdb(ctx); err != nil {
			return err
		}
		if err := s.launch(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		s.started = true
		s.mu.Unlock()
	}
	err = s.ensureDatabase(ctx)
	if err == nil {
		err = s.secureAuth(ctx, adopted)
	}
	if err != nil {
		if !adopted {
			s.mu.Lock()
			foreground := s.child != nil
			s.mu.Unlock()
			if foreground {
				_ = s.shutdown(context.Background(), sigImmediate, true)
			}
		}
		return err
	}
	return nil
}

// adopt finds a server already running on the data directory and waits
// until it accepts connections. false when none runs.
func (s *Server) adopt(ctx context.Context) (bool, error) {
	o := s.opts
	pf, err := readPidFile(o.DataDir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", filepath.Join(o.DataDir, "postmaster.pid"), err)
	}
	if !processAlive(pf.pid) {
		return false, nil // stale: the server crashed or was killed; postgres cleans up at start
	}
	if name := processName(pf.pid); name != "" && !strings.Contains(name, "postgres") && !strings.Contains(name, "postmaster") {
		return false, fmt.Errorf("%s names pid %d, which is not a PostgreSQL server (it is %q): if no server runs on %s, remove that postmaster.pid and try again",
			filepath.Join(o.DataDir, "postmaster.pid"), pf.pid, name, o.DataDir)
	}
	if err := s.waitReady(ctx, pf.pid, nil); err != nil {
		return false, fmt.Errorf("a server (pid %d) already runs on %s but does not accept connections: %w%s\n(it may still be recovering: wait and try again, or stop it with `attunectl embedded stop`)",
			pf.pid, o.DataDir, err, s.logTail())
	}
	return true, nil
}

// ensureDatabase creates the database "attune" when it is missing.
func (s *Server) ensureDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.socketConnString("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to the embedded server to create database %q: %w", DefaultDatabase, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", DefaultDatabase).Scan(&exists); err != nil {
		return fmt.Errorf("looking for database %q on the embedded server: %w", DefaultDatabase, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{DefaultDatabase}.Sanitize()+" OWNER "+pgx.Identifier{s.opts.Superuser}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // duplicate_database
		return fmt.Errorf("creating database %q on the embedded server: %w", DefaultDatabase, err)
	}
	s.mu.Lock()
	s.createdDB = err == nil
	s.mu.Unlock()
	return nil
}

// CreatedDatabase reports whether this Start created the database "attune"
// (a new cluster, or one whose database was dropped): the one moment the
// embedded default migrates by itself. Later invocations leave the schema
// to `attunectl migrate`, so that a read-only command never changes it —
// not after `migrate down`, not for a mistyped --schema. Of several
// processes starting at once, exactly one sees true.
func (s *Server) CreatedDatabase() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createdDB
}

// Started reports whether this Start launched the server, rather than
// finding it running.
func (s *Server) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// Command prepares one of the PostgreSQL programs of BinDir (for example
// pg_basebackup or pg_ctl) to run as the server's user — the unprivileged
// user when this process is root, which PostgreSQL's programs require —
// with the server's environment (no PG* variables) in "/". For fault tests
// that build a standby or promote one. attunectl's commands do not call
// it: pkg/dbtest, the test harness, does.
func (s *Server) Command(ctx context.Context, program string, args ...string) *exec.Cmd {
	return s.command(ctx, program, args...)
}

// command prepares one of the PostgreSQL programs, as the server's user.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, name), args...)
	cmd.Dir = "/"
	// pg_basebackup and friends as the server's user find the password in
	// the file that user owns.
	cmd.Env = append(s.run.env(), "PGPASSFILE="+s.PassFile())
	cmd.SysProcAttr = procAttr(s.run, false)
	return cmd
}

// ConnString is a pgx connection URL for database dbname as the superuser:
// postgres://attune@/DB?host=<socket dir>&port=<port>&sslmode=disable&passfile=<PassFile>,
// or postgres://attune@127.0.0.1:<port>/DB?sslmode=disable&passfile=<PassFile>
// when the server was asked to listen on TCP (Options.ListenAddress). The
// password stays in the password file: it is never part of the URL. Over
// the socket, peer authentication lets the invoking user in without it.
func (s *Server) ConnString(dbname string) string {
	s.mu.Lock()
	port, listen := s.port, s.listen
	s.mu.Unlock()
	if host := tcpHost(s.opts.ListenAddress, listen); host != "" {
		return "postgres://" + url.User(s.opts.Superuser).String() + "@" + net.JoinHostPort(host, strconv.Itoa(port)) + "/" + url.PathEscape(dbname) +
			"?sslmode=disable&passfile=" + queryPath(s.PassFile())
	}
	return s.socketConnString(dbname) + "&passfile=" + queryPath(s.PassFile())
}

// socketConnString is the URL of database dbname over the Unix socket,
// without a password file: what Start itself uses (peer authentication, or
// trust on a cluster an older attunectl made).
func (s *Server) socketConnString(dbname string) string {
	s.mu.Lock()
	port, sock := s.port, s.socketDir
	s.mu.Unlock()
	return "postgres://" + url.User(s.opts.Superuser).String() + "@/" + url.PathEscape(dbname) + "?host=" + queryPath(sock) +
		"&port=" + strconv.Itoa(port) + "&sslmode=disable"
}

// queryPath escapes a file path for a URL query, keeping its slashes.
func queryPath(p string) string { return strings.ReplaceAll(url.QueryEscape(p), "%2F", "/") }

// tcpHost is the address to connect to over TCP, or "" for the socket: TCP
// only when it was asked for and the server listens on it.
func tcpHost(asked, listening string) string {
	if asked == "" || listening == "" {
		return ""
	}
	first := strings.TrimSpace(strings.Split(listening, ",")[0])
	switch first {
	case "*", "0.0.0.0", "localhost", "127.0.0.1":
		return "127.0.0.1"
	case "::", "::1":
		return "::1"
	}
	return first
}

// SocketDir is the directory holding the server's Unix socket. attunectl
// reads it through Status; pkg/dbtest, the test harness, calls this.
func (s *Server) SocketDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socketDir
}

// DataDir is the cluster directory.
func (s *Server) DataDir() string { return s.opts.DataDir }

// LogFile is the server log (for pkg/dbtest, the test harness;
// attunectl reads it through Status).
func (s *Server) LogFile() string { return s.opts.LogFile }

// BinDir is where the PostgreSQL programs were found (for pkg/dbtest and
// the tests; attunectl reads it through Status).
func (s *Server) BinDir() string { return s.opts.BinDir }

// Port is the server's port (the socket's name, and its TCP port if any),
// for pkg/dbtest and the tests; attunectl reads it through Status.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// PID is the postmaster's process id, 0 after Stop (for the tests of
// other packages; attunectl reads it through Status).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}
