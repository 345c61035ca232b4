package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
}

// StatusOf reports on the data directory of opts without changing anything.
// Missing binaries are not an error here: BinDir is then empty.
func StatusOf(opts Options) (Status, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Status{}, err
	}
	st := Status{DataDir: o.DataDir, SocketDir: o.SocketDir, Port: o.Port, LogFile: o.LogFile}
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
		s := &Server{opts: o, pid: pf.pid, port: st.Port, socketDir: st.SocketDir, listen: pf.listen}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, s.ConnString("postgres")); err == nil {
			var v string
			if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
				st.Version = strings.Fields(v)[0]
			}
			conn.Close(ctx)
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
