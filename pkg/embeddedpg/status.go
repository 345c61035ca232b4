package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/attune-automation/attunectl/pkg/proc"
)

// Status describes a data directory and the server on it, for
// `attunectl embedded status`.
type Status struct {
	DataDir   string `json:"data_dir"`
	SocketDir string `json:"socket_dir"`
	Port      int    `json:"port"`
	LogFile   string `json:"log_file"`
	// Running: postmaster.pid names a live process. PID is that process.
	Running bool `json:"running"`
	PID     int  `json:"pid"`
	// Version is the running server's version, else the cluster's major
	// version (PG_VERSION), else the binaries' version; "" when unknown.
	Version string `json:"version"`
	// BinDir is Options.BinDir or what FindBinDir found; "" when none.
	BinDir string `json:"bin_dir"`
	// Initialized: the data directory holds a cluster.
	Initialized bool `json:"initialized"`
	// User and Database are the role and database attunectl connects as
	// and to; PassFile holds the role's password (for TCP); Psql is a
	// command that connects the invoking user through the socket (peer
	// authentication). Empty when the server does not run.
	User     string `json:"user"`
	Database string `json:"database"`
	PassFile string `json:"pass_file"`
	Psql     string `json:"psql,omitempty"`
	// Problem says why the running server cannot be used, e.g. its socket
	// directory failed the ownership checks; "" when there is none.
	Problem string `json:"problem,omitempty"`
}

// StatusOf reports on the data directory of opts without changing anything.
// Missing binaries are not an error here: BinDir is then empty.
func StatusOf(opts Options) (Status, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Status{}, err
	}
	st := Status{DataDir: o.DataDir, SocketDir: o.SocketDir, Port: o.Port, LogFile: o.LogFile,
		User: o.Superuser, Database: DefaultDatabase, PassFile: filepath.Join(o.DataDir, passFileName)}
	if o.resolveBinDir() == nil {
		st.BinDir = o.BinDir
	}
	if b, err := os.ReadFile(filepath.Join(o.DataDir, "PG_VERSION")); err == nil {
		st.Initialized = true
		st.Version = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("reading %s: %w", o.DataDir, err)
	}
	pf, err := readPidFile(o.DataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("reading %s: %w", filepath.Join(o.DataDir, "postmaster.pid"), err)
	}
	if err == nil && proc.Alive(pf.pid) {
		st.Running, st.PID = true, pf.pid
		if pf.port != 0 {
			st.Port = pf.port
		}
		if pf.socketDir != "" {
			st.SocketDir = pf.socketDir
		}
		s, err := runningServer(o, pf)
		if err != nil {
			st.Problem = err.Error()
		} else {
			st.Psql = psqlCommand(st.SocketDir, st.Port, o.Superuser, DefaultDatabase)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if conn, err := pgx.Connect(ctx, s.socketConnString("postgres")); err == nil {
				var v string
				if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
					st.Version = strings.Fields(v)[0]
				}
				conn.Close(ctx)
			}
		}
	}
	if st.Version == "" && st.BinDir != "" {
		if full, _, err := binaryVersion(context.Background(), st.BinDir); err == nil {
			st.Version = full
		}
	}
	return st, nil
}

// StopDir stops the server running on the data directory of opts (fast
// shutdown) and waits until it is gone, bounded by ctx. No server running is
// not an error: StatusOf tells whether one runs.
func StopDir(ctx context.Context, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil // not running (or not even created)
	}
	unlock, err := lockFile(ctx, o.DataDir+".lock")
	if err != nil {
		return fmt.Errorf("stopping postgresql in %s: %w", o.DataDir, err)
	}
	defer unlock()
	pf, err := readPidFile(o.DataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(o.DataDir, "postmaster.pid"), err)
	}
	return stopPID(ctx, o.DataDir, pf.pid, sigFast, false)
}

// runningServer is a handle on the server postmaster.pid describes, after
// the check of its socket directory (which every connection through it
// needs first).
func runningServer(o Options, pf pidFile) (*Server, error) {
	run, err := resolveRunAs(o.RunAsUser)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, run: run, pid: pf.pid, port: o.Port, socketDir: o.SocketDir, listen: pf.listen}
	if pf.port != 0 {
		s.port = pf.port
	}
	if pf.socketDir != "" {
		s.socketDir = pf.socketDir
	}
	if err := checkSocketDir(s.socketDir, run); err != nil {
		return nil, err
	}
	return s, nil
}

// psqlCommand connects psql as the invoking user through the socket.
func psqlCommand(sock string, port int, user, db string) string {
	return "psql -h " + shellQuote(sock) + " -p " + strconv.Itoa(port) + " -U " + shellQuote(user) + " " + shellQuote(db)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Client is a session connected to the embedded server.
type Client struct {
	PID          int       `json:"pid"`
	User         string    `json:"user"`
	Database     string    `json:"database"`
	Application  string    `json:"application"`
	State        string    `json:"state"`
	BackendStart time.Time `json:"backend_start"`
}

// clientsApplication is the application_name of Clients' own sessions.
const clientsApplication = "attunectl-embedded-clients"

// Clients lists the client sessions connected to the server running on
// the data directory of opts, other than the one asking, whose
// application_name is application ("" for every client). None when no
// server runs. `attunectl embedded stop` uses it to warn before it
// disconnects attunectl processes (application "attunectl"): a sensor
// worker on the embedded database would lose it.
func Clients(ctx context.Context, opts Options, application string) ([]Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	pf, err := readPidFile(o.DataDir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !processAlive(pf.pid)) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(o.DataDir, "postmaster.pid"), err)
	}
	s, err := runningServer(o, pf)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(s.socketConnString("postgres"))
	if err != nil {
		return nil, fmt.Errorf("connecting to the embedded server to list its clients: %w", err)
	}
	// Its own sessions are named, so that one a previous call closed but
	// whose backend has not exited yet is never counted as a client.
	cfg.RuntimeParams["application_name"] = clientsApplication
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the embedded server to list its clients: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT pid, coalesce(usename, ''), coalesce(datname, ''), coalesce(application_name, ''), coalesce(state, ''), backend_start
		FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM $2
		  AND ($1 = '' OR application_name = $1)
		ORDER BY backend_start, pid`, application, clientsApplication)
	if err != nil {
		return nil, fmt.Errorf("listing the embedded server's clients: %w", err)
	}
	clients, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Client, error) {
		var c Client
		err := r.Scan(&c.PID, &c.User, &c.Database, &c.Application, &c.State, &c.BackendStart)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the embedded server's clients: %w", err)
	}
	return clients, nil
}
