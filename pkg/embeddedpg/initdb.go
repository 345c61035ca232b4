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
	if s.run.switchUser {
		// As root: a directory above the data directory that another user
		// may change (writable by others without the sticky bit) lets that
		// user swap in links for root to follow.
		for dir := filepath.Dir(o.DataDir); ; dir = filepath.Dir(dir) {
			if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o002 != 0 && fi.Mode()&os.ModeSticky == 0 {
				return fmt.Errorf("embedded data directory %s: %s is writable by every user, who could plant links for root to follow (chmod o-w %s, or choose another data directory)", o.DataDir, dir, dir)
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
		if fi, err := os.Lstat(o.DataDir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("embedded data directory %s is a symbolic link: root does not follow it (give the directory itself)", o.DataDir)
		}
	}
	for _, dir := range []string{filepath.Dir(o.DataDir), filepath.Dir(o.LogFile)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s for the embedded database: %w (choose a data directory you can write to)", dir, err)
		}
	}
	// The server's user opens the data directory and the socket directory
	// and, when pg_ctl starts it, the log file.
	sockParent := filepath.Dir(o.SocketDir)
	if o.autoSocketDir {
		sockParent = socketDirBase
	}
	reach := []string{filepath.Dir(o.DataDir), sockParent}
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
	// initdb's own trust for local connections never serves: the server
	// first starts with attunectl's authentication files (auth.go).
	osUser := invokingUser()
	if err := s.writeOwnedFile(filepath.Join(target, "pg_hba.conf"), []byte(hbaConf(osUser, o.TrustSocket))); err != nil {
		return err
	}
	if err := s.writeOwnedFile(filepath.Join(target, "pg_ident.conf"), []byte(identConf(osUser, o.Superuser))); err != nil {
		return err
	}
	if target != o.DataDir {
		if err := os.Rename(target, o.DataDir); err != nil {
			return fmt.Errorf("moving the new cluster into %s: %w", o.DataDir, err)
		}
	}
	return nil
}

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
