package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// prepareDirs creates the directories around the data directory and checks
// that the server's user can reach them.
func (s *Server) prepareDirs() error {
	o := s.opts
	for _, dir := range []string{filepath.Dir(o.DataDir), filepath.Dir(o.LogFile)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s for the embedded database: %w (choose a data directory you can write to)", dir, err)
		}
	}
	// The server's user opens the data directory and the socket directory
	// and, when pg_ctl starts it, the log file.
	reach := []string{filepath.Dir(o.DataDir), filepath.Dir(o.SocketDir)}
	if !o.Foreground {
		reach = append(reach, filepath.Dir(o.LogFile))
	}
	for _, dir := range reach {
		if err := s.run.checkTraversable(dir); err != nil {
			return fmt.Errorf("preparing the embedded database: %w", err)
		}
	}
	return nil
}

// initdb creates the cluster when the data directory is missing or empty.
// When it is missing, initdb works in a sibling directory that is renamed
// into place once it has succeeded, so an interrupted initdb never leaves a
// half-made cluster that later starts would trip over. An existing empty
// directory (perhaps a mount point) is initialized in place.
func (s *Server) initdb(ctx context.Context) error {
	o := s.opts
	if _, err := os.Stat(filepath.Join(o.DataDir, "PG_VERSION")); err == nil {
		return nil
	}
	target := o.DataDir
	entries, err := os.ReadDir(o.DataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		target = o.DataDir + ".initdb"
		if err := os.RemoveAll(target); err != nil { // left by an interrupted initdb; we hold the lock
			return fmt.Errorf("removing the leftovers of an interrupted initdb in %s: %w", target, err)
		}
		if err := os.Mkdir(target, 0o700); err != nil {
			return fmt.Errorf("creating %s for initdb: %w", target, err)
		}
		defer os.RemoveAll(target)
	case err != nil:
		return fmt.Errorf("reading data directory %s: %w", o.DataDir, err)
	case len(entries) > 0:
		return fmt.Errorf("data directory %s is not empty but holds no PostgreSQL cluster (no PG_VERSION): empty it or choose another data directory", o.DataDir)
	default:
		if err := os.Chmod(o.DataDir, 0o700); err != nil {
			return fmt.Errorf("restricting data directory %s to its owner: %w", o.DataDir, err)
		}
	}
	if err := s.run.chown(target); err != nil {
		return fmt.Errorf("preparing data directory: %w", err)
	}
	args := []string{"-D", target, "-U", o.Superuser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if o.Ephemeral {
		args = append(args, "--no-sync")
	}
	out, err := s.command(ctx, "initdb", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("initializing a postgresql cluster in %s with %s: %w\n%s\n(fix the problem initdb reports and try again)",
			o.DataDir, filepath.Join(o.BinDir, "initdb"), err, indent(lastLines(string(out), 15)))
	}
	if err := s.writeOwnedFile(filepath.Join(target, "pg_hba.conf"), []byte(hbaConf)); err != nil {
		return err
	}
	if target != o.DataDir {
		if err := os.Rename(target, o.DataDir); err != nil {
			return fmt.Errorf("moving the new cluster into %s: %w", o.DataDir, err)
		}
	}
	return nil
}

// hbaConf trusts local connections only. TCP is reachable only when
// Options.ListenAddress is set, and then only from the loopback addresses.
const hbaConf = `# Written by attunectl when it initialized this cluster: trust the Unix socket
# (restricted to the server's user by unix_socket_permissions, root aside)
# and the loopback addresses, reject everything else.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
host    all          all   ::1/128        trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
host    replication  all   ::1/128        trust
`

// writeConf writes the settings Start manages to DataDir/attunectl.conf and
// makes sure postgresql.conf includes that file.
func (s *Server) writeConf() error {
	o := s.opts
	var b strings.Builder
	b.WriteString("# Written by attunectl at every start of this server: edits here are lost.\n")
	b.WriteString("# Put your own settings in postgresql.conf above its include line, or use ALTER SYSTEM.\n")
	set := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, quoteConf(v)) }
	set("port", strconv.Itoa(o.Port))
	set("listen_addresses", o.ListenAddress)
	set("unix_socket_directories", o.SocketDir)
	set("unix_socket_permissions", "0700")
	if o.Ephemeral {
		b.WriteString("# Ephemeral (test) server: fast, and not crash safe.\n")
		set("fsync", "off")
		set("synchronous_commit", "off")
		set("full_page_writes", "off")
	}
	keys := make([]string, 0, len(o.Settings))
	for k := range o.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := o.Settings[k]
		if strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("embedded postgres: setting %s has a line break in its value: remove it", k)
		}
		set(k, v)
	}
	if err := s.writeOwnedFile(filepath.Join(o.DataDir, confFile), []byte(b.String())); err != nil {
		return err
	}

	main := filepath.Join(o.DataDir, "postgresql.conf")
	content, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("reading %s: %w", main, err)
	}
	include := "include_if_exists = '" + confFile + "'"
	if strings.Contains(string(content), include) {
		return nil
	}
	f, err := os.OpenFile(main, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("adding the include of %s to %s: %w", confFile, main, err)
	}
	_, err = fmt.Fprintf(f, "\n# Settings managed by attunectl (port, sockets, listen addresses, …).\n%s\n", include)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("adding the include of %s to %s: %w", confFile, main, err)
	}
	return nil
}

// quoteConf quotes a postgresql.conf value: backslashes and quotes escaped.
func quoteConf(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `'`, `''`)
	return "'" + v + "'"
}

// writeOwnedFile writes a file the server reads, owned by the server's user.
func (s *Server) writeOwnedFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return s.run.chown(path)
}

// prepareSocketDir creates a socket directory outside the data directory,
// 0700 and owned by the server's user, or checks that an existing one is
// writable by that user.
func (s *Server) prepareSocketDir() error {
	dir := s.opts.SocketDir
	if dir == s.opts.DataDir {
		return nil
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating socket directory %s: %w (choose a socket directory you can write to)", dir, err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restricting socket directory %s: %w", dir, err)
		}
		return s.run.chown(dir)
	}
	if err != nil {
		return fmt.Errorf("checking socket directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory: remove it or choose another socket directory", dir)
	}
	if uid, gid, ok := fileOwner(fi); ok {
		mode := fi.Mode().Perm()
		writable := (uid == s.run.uid && mode&0o300 == 0o300) ||
			(uid != s.run.uid && (gid == s.run.gid || s.run.inGroup(gid)) && mode&0o030 == 0o030) ||
			(uid != s.run.uid && mode&0o003 == 0o003)
		if !writable {
			return fmt.Errorf("socket directory %s (mode %#o, uid %d) is not writable by the server's user %s (uid %d): remove it or choose another socket directory",
				dir, mode, uid, s.run.name, s.run.uid)
		}
	}
	return nil
}

// prepareLogFile creates the log file; as root it belongs to the server's
// user, because pg_ctl opens it as that user.
func (s *Server) prepareLogFile() error {
	f, err := os.OpenFile(s.opts.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("creating server log %s: %w (choose a log file you can write to)", s.opts.LogFile, err)
	}
	f.Close()
	return s.run.chown(s.opts.LogFile)
}
