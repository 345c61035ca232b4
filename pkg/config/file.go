package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"regexp"
	"strconv"
)

// errIgnored marks a config file that exists but is not obeyed; the
// warnings say why.
var errIgnored = errors.New("config file ignored")

// readConfigFile reads a config file that is safe to obey, in the manner of
// git's safe.directory: attunectl often runs as root, and a config file
// decides which database it trusts and which commands it runs.
//
//   - A FIFO, device, socket or directory is refused (an error): reading it
//     could block forever or never end.
//   - A file (or a symbolic link to it) owned by someone other than the
//     invoking user or root, or writable by its group or by others, is
//     ignored with a warning naming the file and the reason: another user
//     could have put it there, or change it, to point attunectl at their
//     database.
//   - A file that holds a password and that every user may read is used,
//     with a warning.
//
// The ownership and mode checked are those of the file as opened (after
// symbolic links), so the file cannot be swapped between check and read.
func readConfigFile(path string) (data []byte, warnings []string, err error) {
	if li, err := os.Lstat(path); err != nil {
		return nil, nil, err
	} else if li.Mode()&os.ModeSymlink != 0 {
		if why := notOurs(li); why != "" {
			return nil, []string{fmt.Sprintf("ignoring config file %s: it is a symbolic link %s (remove it, or pass --config with a file you own)", path, why)}, errIgnored
		}
	}
	f, err := openNoBlock(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (it is %s): refusing to read it", path, describeType(fi.Mode()))
	}
	if why := notOurs(fi); why != "" {
		return nil, []string{fmt.Sprintf("ignoring config file %s: it is %s (remove it, chown it, or pass --config with a file you own)", path, why)}, errIgnored
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, []string{fmt.Sprintf("ignoring config file %s: it is writable by %s (mode %#o), so another user could change what attunectl does (chmod go-w %s)", path, writers(perm), perm, path)}, errIgnored
	}
	data, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes", path, maxFileSize)
	}
	if perm := fi.Mode().Perm(); perm&0o004 != 0 && holdsPassword(data) {
		warnings = append(warnings, fmt.Sprintf("config file %s holds a password and every user of this host can read it (mode %#o): chmod o-r %s (the packages install it 0640, group attune)", path, perm, path))
	}
	return data, warnings, nil
}

// notOurs says why a file's owner is neither the invoking user nor root,
// or "" when it is one of them.
func notOurs(fi os.FileInfo) string {
	uid, ok := fileUID(fi)
	if !ok {
		return ""
	}
	me := os.Geteuid()
	if uid == 0 || uid == me {
		return ""
	}
	return fmt.Sprintf("owned by %s, not by you (%s) or root", userName(uid), userName(me))
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

func writers(perm os.FileMode) string {
	switch {
	case perm&0o020 != 0 && perm&0o002 != 0:
		return "its group and every user"
	case perm&0o020 != 0:
		return "its group"
	}
	return "every user"
}

func describeType(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "not a regular file"
}

// passwordRe finds a password in a config file: a URL with a user-info
// password, or a password=/password: key or parameter (password, sslpassword,
// db_password, …) with a value.
var passwordRe = regexp.MustCompile(`(?i)://[^\s/@:'"]*:[^\s@'"]+@|password['"]?\s*[:=]\s*['"]?[^\s'"#]`)

func holdsPassword(data []byte) bool { return passwordRe.Match(data) }
