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

// boxUIDs are the dynamic uids the boxes of this process hold now.
var boxUIDs struct {
	sync.Mutex
	held map[uint32]bool
	next uint32
}

// acquireBoxUser picks, for one box, a uid of the dynamic range that no
// user or group of the user database names, no other box of this process
// holds and no process of the host runs as: as root without sensor.run_as,
// each sensor runs as a uid of its own, which no other sensor, the
// embedded server or the owner of the configuration shares. release gives
// it back when the box is gone.
func acquireBoxUser() (u User, release func(), err error) {
	boxUIDs.Lock()
	defer boxUIDs.Unlock()
	if boxUIDs.held == nil {
		boxUIDs.held = map[uint32]bool{}
		boxUIDs.next = DynamicUIDFirst
	}
	busy := hostUIDs()
	n := uint32(DynamicUIDLast - DynamicUIDFirst + 1)
	for i := uint32(0); i < n; i++ {
		uid := DynamicUIDFirst + (boxUIDs.next-DynamicUIDFirst+i)%n
		if boxUIDs.held[uid] || busy[uid] {
			continue
		}
		id := strconv.Itoa(int(uid))
		if _, err := user.LookupId(id); err == nil {
			continue
		}
		if _, err := user.LookupGroupId(id); err == nil {
			continue
		}
		boxUIDs.held[uid] = true
		boxUIDs.next = uid + 1
		release = func() {
			boxUIDs.Lock()
			delete(boxUIDs.held, uid)
			boxUIDs.Unlock()
		}
		return User{Name: DynamicUserName, UID: uid, GID: uid, Home: BoxHome}, release, nil
	}
	return User{}, nil, fmt.Errorf("no free uid in %d-%d for another sensor", DynamicUIDFirst, DynamicUIDLast)
}

// hostUIDs are the uids of the dynamic range that processes of the host
// run as (another attunectl's boxes): read from the owners of /proc/PID.
func hostUIDs() map[uint32]bool {
	out := map[uint32]bool{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if fi, err := os.Stat("/proc/" + e.Name()); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid >= DynamicUIDFirst && st.Uid <= DynamicUIDLast {
				out[st.Uid] = true
			}
		}
	}
	return out
}
