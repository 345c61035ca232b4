package embeddedpg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// socketDirRecord, beside the data directory, names the socket directory
// that Start created under /tmp when the data directory's own path is too
// long for a socket (DIR.socketdir).
const socketDirRecord = ".socketdir"

// socketDirBase is where Start creates a socket directory when the data
// directory's path is too long for a socket.
var socketDirBase = "/tmp"

// checkSocketDir fails unless dir is a directory, not a symbolic link,
// owned by the server's user and writable by nobody else: anyone who can
// write the socket directory can put their own socket in place of the
// server's and see every client's connection. It runs every time a socket
// directory is used — before the server is started on it and before a
// client connects through it — so a directory swapped in later, or one
// another user created under a name Start would have chosen, is refused.
func checkSocketDir(dir string, r runAs) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("checking socket directory: %w", err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("socket directory %s is a symbolic link: refusing to use it (remove it; attunectl makes its own)", dir)
	case !fi.IsDir():
		return fmt.Errorf("socket directory %s is not a directory: refusing to use it (remove it; attunectl makes its own)", dir)
	}
	uid, _, ok := fileOwner(fi)
	if !ok {
		return nil
	}
	if uid != r.uid {
		return fmt.Errorf("socket directory %s is owned by %s, not by the server's user %s (uid %d): refusing to use it, another user may have made it (remove it, and stop the server with `attunectl embedded stop` if it runs)",
			dir, ownerName(uid), r.name, r.uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("socket directory %s is writable by other users (mode %#o): refusing to use it (chmod 0700 %s)", dir, perm, dir)
	}
	return nil
}

// prepareSocketDir makes sure the socket directory exists and passes
// checkSocketDir before the server starts on it. With no
// Options.SocketDir and a data directory whose path is too long, it reuses
// the directory recorded in DIR.socketdir when that still passes the check,
// else creates a new one under /tmp with an unpredictable name (never a
// name derived from the data directory, which another user could create
// first).
func (s *Server) prepareSocketDir() error {
	if err := s.prepareSocketDirChecked(); err != nil {
		return err
	}
	if !s.opts.TrustSocket {
		return nil
	}
	// A trusting socket is safe only where no one but the server's user
	// (and root) can reach it.
	fi, err := os.Stat(s.opts.SocketDir)
	if err != nil {
		return fmt.Errorf("checking socket directory: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("socket directory %s is open to other users (mode %#o) and the server trusts its socket (Options.TrustSocket): refusing to start (chmod 0700 %s)", s.opts.SocketDir, perm, s.opts.SocketDir)
	}
	return nil
}

// prepareSocketDirChecked is prepareSocketDir without the TrustSocket check.
func (s *Server) prepareSocketDirChecked() error {
	o := &s.opts
	if o.autoSocketDir {
		if dir := readSocketDirRecord(o.DataDir); dir != "" && checkSocketDir(dir, s.run) == nil {
			o.SocketDir = dir
			return nil
		}
		dir, err := os.MkdirTemp(socketDirBase, "apg-")
		if err != nil {
			return fmt.Errorf("creating a socket directory under %s: %w", socketDirBase, err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restricting socket directory %s: %w", dir, err)
		}
		if err := s.run.chown(dir); err != nil {
			return err
		}
		if err := writeFileAtomic(o.DataDir+socketDirRecord, []byte(dir+"\n"), 0o600); err != nil {
			return fmt.Errorf("recording the socket directory: %w", err)
		}
		o.SocketDir = dir
		return checkSocketDir(dir, s.run)
	}
	dir := o.SocketDir
	if dir != o.DataDir {
		if err := os.Mkdir(dir, 0o700); err == nil {
			if err := s.run.chown(dir); err != nil {
				return err
			}
		} else if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("creating socket directory %s: %w (choose a socket directory you can write to)", dir, err)
		}
	}
	return checkSocketDir(dir, s.run)
}

// readSocketDirRecord is the socket directory recorded for dataDir, or "".
func readSocketDirRecord(dataDir string) string {
	b, err := os.ReadFile(dataDir + socketDirRecord)
	if err != nil {
		return ""
	}
	dir := strings.TrimSpace(string(b))
	if !filepath.IsAbs(dir) {
		return ""
	}
	return dir
}

// writeFileAtomic writes path through a temporary file in its directory
// and a rename, so readers see the old content or the new, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// RecordedSocketDir is the socket directory the server of dataDir uses when
// attunectl chose it (under /tmp, recorded beside the data directory), or
// "" when none is recorded: the sandbox hides it from commands.
func RecordedSocketDir(dataDir string) string { return readSocketDirRecord(dataDir) }
