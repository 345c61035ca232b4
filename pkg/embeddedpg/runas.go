package embeddedpg

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// runAs is the identity initdb, pg_ctl and postgres run under.
type runAs struct {
	// switchUser is true when this process is root and the server runs as
	// the unprivileged user below; false means "as this process".
	switchUser bool
	name       string
	uid, gid   int
	groups     []uint32
	home       string
}

// resolveRunAs picks the user the server runs as. Only root switches user:
// PostgreSQL refuses to run as root.
func resolveRunAs(name string) (runAs, error) {
	if os.Geteuid() != 0 {
		r := runAs{uid: os.Geteuid(), gid: os.Getegid()}
		if u, err := user.Current(); err == nil {
			r.name, r.home = u.Username, u.HomeDir
		}
		return r, nil
	}
	names := []string{name}
	if name == "" {
		names = []string{"postgres", "nobody"}
	}
	var errs []string
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Sprintf("user %s has a non-numeric uid/gid %s/%s", n, u.Uid, u.Gid))
			continue
		}
		if uid == 0 {
			errs = append(errs, fmt.Sprintf("user %s is root", n))
			continue
		}
		r := runAs{switchUser: true, name: n, uid: uid, gid: gid, home: u.HomeDir}
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.Atoi(id); err == nil {
					r.groups = append(r.groups, uint32(g))
				}
			}
		}
		return r, nil
	}
	return runAs{}, fmt.Errorf("embedded postgres: PostgreSQL refuses to run as root and no unprivileged user to run it as was found (%s): create a system user \"postgres\" (useradd --system postgres) or run attunectl as an ordinary user",
		strings.Join(errs, "; "))
}

// chown gives path to the server's user when this process is root.
func (r runAs) chown(path string) error {
	if !r.switchUser {
		return nil
	}
	// Lchown: a symlink planted where attunectl expected its own file is
	// given away itself, never what it points to.
	if err := os.Lchown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("giving %s to user %s: %w", path, r.name, err)
	}
	return nil
}

// env is the environment for initdb, pg_ctl and postgres: this process's,
// without PG* variables (PGDATA, PGPORT … would override what Start chose)
// and, when switching user, with that user's HOME, USER and LOGNAME.
func (r runAs) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		if r.switchUser && (strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "USER=") || strings.HasPrefix(kv, "LOGNAME=")) {
			continue
		}
		env = append(env, kv)
	}
	if r.switchUser {
		home := r.home
		if fi, err := os.Stat(home); home == "" || err != nil || !fi.IsDir() {
			home = "/"
		}
		env = append(env, "HOME="+home, "USER="+r.name, "LOGNAME="+r.name)
	}
	return env
}

// checkTraversable fails with an explanation when the server's user cannot
// reach dir: every ancestor must be searchable (x) by that user. A root-owned
// 0700 directory such as /root or a t.TempDir() is the usual culprit.
func (r runAs) checkTraversable(dir string) error {
	if !r.switchUser {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				if parent := filepath.Dir(d); parent != d {
					continue
				}
			}
			return fmt.Errorf("checking %s: %w", d, err)
		}
		uid, gid, ok := fileOwner(fi)
		if ok {
			mode := fi.Mode().Perm()
			var can bool
			switch {
			case uid == r.uid:
				can = mode&0o100 != 0
			case gid == r.gid || r.inGroup(gid):
				can = mode&0o010 != 0
			default:
				can = mode&0o001 != 0
			}
			if !can {
				return fmt.Errorf("the server runs as user %s, which cannot reach %s: %s is mode %#o and owned by uid %d "+
					"(choose a data directory outside it, for example /var/lib/attunectl/postgres, or chmod o+x %s)",
					r.name, dir, d, mode, uid, d)
			}
		}
		if parent := filepath.Dir(d); parent == d {
			return nil
		}
	}
}

func (r runAs) inGroup(gid int) bool {
	for _, g := range r.groups {
		if int(g) == gid {
			return true
		}
	}
	return false
}

// ownerName is "name (uid N)" for a uid, or "uid N" when it has no name.
func ownerName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}
