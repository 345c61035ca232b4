package embeddedpg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

const (
	// DefaultPort names the socket .s.PGSQL.5432 and is the TCP port when
	// the server listens on TCP.
	DefaultPort = 5432
	// DefaultSuperuser is the role initdb creates; connections use it.
	DefaultSuperuser = "attune"
	// DefaultDatabase is created by Start when it is missing.
	DefaultDatabase = "attune"

	// maxSocketPath is the longest Unix socket path the kernel accepts
	// (sun_path is 108 bytes on Linux, including the terminating NUL).
	maxSocketPath = 107
	// confFile holds the settings Start manages; postgresql.conf includes it.
	confFile = "attunectl.conf"
)

// Options says where and how to run a server. Only DataDir is required.
type Options struct {
	// DataDir is the cluster directory. Required; made absolute.
	DataDir string
	// SocketDir holds the Unix socket. Default: DataDir when the socket path
	// fits in 107 bytes, else a directory Start creates under /tmp with an
	// unpredictable name (recorded in DIR.socketdir and reused while it
	// passes the checks). Whatever it is, it must be owned by the server's
	// user and writable by no one else: Start checks that every time.
	SocketDir string
	// BinDir holds initdb, pg_ctl and postgres. Default: FindBinDir().
	BinDir string
	// Port names the socket .s.PGSQL.<port> and is the TCP port when
	// ListenAddress is set. Default 5432.
	Port int
	// ListenAddress is PostgreSQL's listen_addresses: "" listens on the Unix
	// socket only; "127.0.0.1" for tests that need TCP. Only loopback
	// connections are trusted by pg_hba.conf.
	ListenAddress string
	// Ephemeral makes a throwaway server: initdb --no-sync, fsync=off,
	// synchronous_commit=off, full_page_writes=off. A crash of the machine
	// can corrupt such a cluster: never use it for data a user keeps.
	Ephemeral bool
	// TrustSocket makes the Unix socket trust every connection, as any
	// role, instead of peer authentication mapped to the invoking user. It
	// is for throwaway test servers whose clients are not the invoking OS
	// user: a PgBouncer that runs as the server's user, test roles without
	// a password. It needs Ephemeral and a private socket directory (no
	// access for group or others, owned by the server's user, checked at
	// every start), so that only the server's user and root can reach the
	// socket. Loopback TCP keeps scram-sha-256. Never for the embedded
	// default that keeps a user's data.
	TrustSocket bool
	// Foreground runs postgres as a child of this process (tests): it is
	// signalled when this process dies (Linux) and Stop stops it. false runs
	// it through `pg_ctl start`, a daemon that outlives this process.
	Foreground bool
	// RunAsUser is the user the server runs as when this process is root.
	// Default "postgres", else "nobody". Ignored when not root.
	RunAsUser string
	// Superuser is the role initdb creates (initdb -U). Default "attune".
	Superuser string
	// Settings are extra postgresql.conf settings, e.g. max_connections.
	Settings map[string]string
	// LogFile is the server log. Default: beside DataDir, named <base>.log.
	LogFile string

	// autoSocketDir: SocketDir was not given and DataDir is too long to
	// hold the socket; Start picks the directory (prepareSocketDir).
	autoSocketDir bool
}

// managedSettings are set from Options fields; Settings may not override them.
var managedSettings = map[string]string{
	"port":                    "Options.Port",
	"listen_addresses":        "Options.ListenAddress",
	"unix_socket_directories": "Options.SocketDir",
	"data_directory":          "Options.DataDir",
	"config_file":             "Options.DataDir",
	"hba_file":                "Options.DataDir",
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// withDefaults fills every default except BinDir (see resolveBinDir), makes
// paths absolute and validates.
func (o Options) withDefaults() (Options, error) {
	if o.DataDir == "" {
		return o, errors.New("embedded postgres: no data directory given (set Options.DataDir)")
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return o, fmt.Errorf("embedded postgres: resolving data directory %q: %w", o.DataDir, err)
	}
	o.DataDir = filepath.Clean(dataDir)
	if filepath.Dir(o.DataDir) == o.DataDir {
		return o, fmt.Errorf("embedded postgres: data directory %q is a file system root: choose a directory below it", o.DataDir)
	}
	if o.TrustSocket && !o.Ephemeral {
		return o, errors.New("embedded postgres: TrustSocket is for throwaway test servers only: set Ephemeral too, or leave TrustSocket off")
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Port < 1 || o.Port > 65535 {
		return o, fmt.Errorf("embedded postgres: port %d is out of range: choose a port between 1 and 65535", o.Port)
	}
	if o.Superuser == "" {
		o.Superuser = DefaultSuperuser
	}
	switch {
	case o.SocketDir == "" && len(socketPath(o.DataDir, o.Port)) <= maxSocketPath:
		o.SocketDir = o.DataDir
	case o.SocketDir == "" || o.autoSocketDir:
		o.autoSocketDir = true
		o.SocketDir = readSocketDirRecord(o.DataDir) // "" until Start creates one
	default:
		if o.SocketDir, err = filepath.Abs(o.SocketDir); err != nil {
			return o, fmt.Errorf("embedded postgres: resolving socket directory: %w", err)
		}
	}
	if p := socketPath(o.SocketDir, o.Port); !o.autoSocketDir && len(p) > maxSocketPath {
		return o, fmt.Errorf("embedded postgres: socket path %s is %d bytes, more than the %d a Unix socket allows: choose a shorter socket directory", p, len(p), maxSocketPath)
	}
	if o.LogFile == "" {
		o.LogFile = filepath.Join(filepath.Dir(o.DataDir), filepath.Base(o.DataDir)+".log")
	} else if o.LogFile, err = filepath.Abs(o.LogFile); err != nil {
		return o, fmt.Errorf("embedded postgres: resolving log file: %w", err)
	}
	if o.BinDir != "" {
		if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
			return o, fmt.Errorf("embedded postgres: resolving bin directory: %w", err)
		}
	}
	for k := range o.Settings {
		if !settingName.MatchString(k) {
			return o, fmt.Errorf("embedded postgres: %q is not a valid postgresql.conf setting name", k)
		}
		if field, ok := managedSettings[k]; ok {
			return o, fmt.Errorf("embedded postgres: setting %q is managed by embeddedpg: use %s instead of Settings", k, field)
		}
	}
	return o, nil
}

// resolveBinDir fills BinDir through FindBinDir, or checks the given one.
func (o *Options) resolveBinDir() error {
	if o.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return err
		}
		o.BinDir = dir
		return nil
	}
	return checkBinDir(o.BinDir)
}

func socketPath(dir string, port int) string {
	return filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))
}

// DefaultDataDir is where attunectl keeps its embedded cluster:
// $XDG_STATE_HOME/attunectl/postgres, else ~/.local/state/attunectl/postgres.
// As root it is /var/lib/attunectl/postgres, because the unprivileged user
// the server runs as cannot traverse /root.
func DefaultDataDir() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/lib/attunectl/postgres", nil
	}
	if state := os.Getenv("XDG_STATE_HOME"); state != "" && filepath.IsAbs(state) {
		return filepath.Join(state, "attunectl", "postgres"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the default embedded database directory: %w (set XDG_STATE_HOME or HOME, or configure a database URL)", err)
	}
	return filepath.Join(home, ".local", "state", "attunectl", "postgres"), nil
}
