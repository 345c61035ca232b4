package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// launch starts a server on an initialized, stopped data directory.
func (s *Server) launch(ctx context.Context) error {
	o := s.opts
	_, major, err := binaryVersion(ctx, o.BinDir)
	if err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(o.DataDir, "PG_VERSION")); err == nil {
		if v := strings.TrimSpace(string(b)); v != major {
			return fmt.Errorf("data directory %s was created by PostgreSQL %s but the binaries in %s are PostgreSQL %s: "+
				"use PostgreSQL %s binaries (set the bin directory), or upgrade the cluster with pg_upgrade, or move the directory away to start with an empty one",
				o.DataDir, v, o.BinDir, major, v)
		}
	}
	if s.run.switchUser {
		if fi, err := os.Stat(o.DataDir); err == nil {
			if uid, _, ok := fileOwner(fi); ok && uid != s.run.uid {
				return fmt.Errorf("data directory %s is owned by uid %d but the server runs as user %s (uid %d): chown -R %s %s, or choose another data directory",
					o.DataDir, uid, s.run.name, s.run.uid, s.run.name, o.DataDir)
			}
		}
	}
	if err := s.prepareSocketDir(); err != nil {
		return err
	}
	if err := s.writeConf(); err != nil {
		return err
	}
	if _, err := s.writeAuthFiles(); err != nil {
		return err
	}
	if err := s.prepareLogFile(); err != nil {
		return err
	}
	if o.Foreground {
		return s.launchChild(ctx)
	}
	return s.launchDaemon(ctx)
}

// launchChild runs postgres as a child of this process, its output appended
// to the log file.
func (s *Server) launchChild(ctx context.Context) error {
	o := s.opts
	logf, err := os.OpenFile(o.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening server log %s: %w", o.LogFile, err)
	}
	cmd := exec.Command(filepath.Join(o.BinDir, "postgres"), "-D", o.DataDir)
	cmd.Dir = "/"
	cmd.Env = s.run.env()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = procAttr(s.run, true)
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := s.waitReady(ctx, cmd.Process.Pid, c.done); err != nil {
		select {
		case <-c.done:
			if c.err != nil {
				err = fmt.Errorf("%w (%v)", err, c.err)
			}
		default:
			_ = signalProcess(cmd.Process.Pid, sigImmediate)
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				_ = signalProcess(cmd.Process.Pid, sigKill)
				<-c.done
			}
		}
		s.mu.Lock()
		s.pid = 0
		s.mu.Unlock()
		return s.startError(err)
	}
	s.mu.Lock()
	s.child = c
	s.mu.Unlock()
	return nil
}

// launchDaemon starts the server with `pg_ctl start`: it runs in its own
// session and outlives this process.
func (s *Server) launchDaemon(ctx context.Context) error {
	o := s.opts
	wait := 5 * time.Minute
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	secs := int(wait.Seconds())
	if secs < 1 {
		secs = 1
	}
	out, err := s.command(ctx, "pg_ctl", "start", "-D", o.DataDir, "-l", o.LogFile, "-w", "-t", strconv.Itoa(secs), "-s").CombinedOutput()
	if err != nil {
		msg := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; ")), " ")
		if msg != "" {
			err = fmt.Errorf("pg_ctl start: %w: %s", err, msg)
		} else {
			err = fmt.Errorf("pg_ctl start: %w", err)
		}
		return s.startError(err)
	}
	pf, err := readPidFile(o.DataDir)
	if err != nil {
		return s.startError(fmt.Errorf("pg_ctl reported the server started, but reading postmaster.pid failed: %w", err))
	}
	if err := s.waitReady(ctx, pf.pid, nil); err != nil {
		return s.startError(err)
	}
	return nil
}

// waitReady polls until the server pid accepts connections, it exits, or
// ctx is done. It records where the server listens, as postmaster.pid says.
func (s *Server) waitReady(ctx context.Context, pid int, exited <-chan struct{}) error {
	o := s.opts
	var last error
	for {
		pf, err := readPidFile(o.DataDir)
		switch {
		case err != nil:
			last = fmt.Errorf("reading postmaster.pid: %w", err)
		case pf.pid != pid:
			last = fmt.Errorf("postmaster.pid names pid %d, not %d", pf.pid, pid)
		default:
			port, sock, listen := o.Port, o.SocketDir, o.ListenAddress
			if pf.port != 0 {
				port = pf.port
			}
			if pf.socketDir != "" {
				sock = pf.socketDir
			}
			if pf.lines >= 6 {
				listen = pf.listen
			}
			if pf.socketDir == "" && sock == "" {
				last = errors.New("postmaster.pid names no socket directory yet")
				break
			}
			// The socket directory is checked before every connection
			// through it: another user's directory is never trusted.
			if err := checkSocketDir(sock, s.run); err != nil {
				return err
			}
			s.mu.Lock()
			s.pid, s.port, s.socketDir, s.listen = pid, port, sock, listen
			s.mu.Unlock()
			if last = ping(ctx, s.socketConnString("postgres")); last == nil {
				return nil
			}
		}
		if exited != nil {
			select {
			case <-exited:
				return fmt.Errorf("the server (pid %d) exited during startup", pid)
			default:
			}
		} else if !processAlive(pid) {
			return fmt.Errorf("the server (pid %d) exited during startup", pid)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server (pid %d) to accept connections: %w (last attempt: %v)", pid, ctx.Err(), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, connString string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, connString)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
