//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// The uids attunectl picks from when it runs as root and sensor.run_as is
// not set: systemd's range for dynamic users, which user databases leave
// free.
const (
	DynamicUIDFirst = 61184
	DynamicUIDLast  = 65519
)

// DynamicUserName is how a dynamic uid is named in messages and output.
const DynamicUserName = "attunectl-sandbox"

var dynamic struct {
	once sync.Once
	user User
	err  error
}

// dynamicUser picks, once per process, the first uid of the dynamic range
// that names no user and no group, and gives it a private HOME.
func dynamicUser() (User, error) {
	dynamic.once.Do(func() {
		for uid := DynamicUIDFirst; uid <= DynamicUIDLast; uid++ {
			id := strconv.Itoa(uid)
			if _, err := user.LookupId(id); err == nil {
				continue
			}
			if _, err := user.LookupGroupId(id); err == nil {
				continue
			}
			u := User{Name: DynamicUserName, UID: uint32(uid), GID: uint32(uid)}
			u.Home, dynamic.err = privateHome(u)
			dynamic.user = u
			return
		}
		dynamic.err = fmt.Errorf("no free uid in %d-%d", DynamicUIDFirst, DynamicUIDLast)
	})
	return dynamic.user, dynamic.err
}

// privateHome makes (or checks) a directory only u can enter, in the
// system's temporary directory: attunectl-home-UID, mode 0700, owned by u.
// An existing entry that is not such a directory (a symlink, a file,
// another owner's) is refused rather than followed.
func privateHome(u User) (string, error) {
	dir := filepath.Join(os.TempDir(), "attunectl-home-"+strconv.Itoa(int(u.UID)))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("creating a home directory for uid %d: %w", u.UID, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("home directory for uid %d: %w", u.UID, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || (st.Uid != 0 && st.Uid != u.UID) {
		return "", fmt.Errorf("home directory for uid %d: %s exists and is not a directory attunectl made (remove it)", u.UID, dir)
	}
	if err := os.Chown(dir, int(u.UID), int(u.GID)); err != nil {
		return "", fmt.Errorf("home directory for uid %d: %w", u.UID, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("home directory for uid %d: %w", u.UID, err)
	}
	return dir, nil
}
