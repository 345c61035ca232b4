package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A box is the set of namespaces a command runs in (Linux):
//
//   - its own PID namespace, with the helper as its init (PID 1): nothing
//     the command starts can leave it, the kernel kills everything in it
//     when the helper ends, and the kernel drops SIGKILL and SIGSTOP sent
//     to the helper from inside, so the command cannot kill or freeze it;
//     the command sees only its own processes in /proc (not other
//     sensors', nor their environments);
//   - its own mount namespace: a fresh /proc, a private /tmp, /var/tmp and
//     /dev/shm (tmpfs, gone with the box), HOME a directory on that /tmp,
//     and the worker's secrets hidden: its configuration file, password
//     files, the embedded server's data and socket directories
//     (boxConfig.Hide) read as empty;
//   - its own IPC namespace.
//
// As root the helper runs as root (non-dumpable, a user the command is
// not) and starts the command as the sandbox user. As an ordinary user the
// box is a user namespace that maps only that user to itself: the helper
// keeps the capability to mount inside it (an ambient capability), the
// command gets none.
type boxConfig struct {
	// Hide are absolute paths made unreadable inside the box: a directory
	// gets an empty read-only tmpfs over it, a file /dev/null.
	Hide []string `json:"hide,omitempty"`
	// Keep are directories below /tmp, /var/tmp or /dev/shm that stay
	// visible, as they are, through the private ones: where the command's
	// program, script or working directory is.
	Keep []string `json:"keep,omitempty"`
	// TmpBytes bounds each private tmpfs (/tmp, /var/tmp, /dev/shm).
	TmpBytes uint64 `json:"tmp_bytes"`
	// Owner is the uid and gid HOME belongs to inside the box.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// BoxHome is HOME inside a box: private to the command, on its /tmp.
const BoxHome = "/tmp/home"

// DefaultTmpBytes bounds a box's private /tmp, /var/tmp and /dev/shm.
const DefaultTmpBytes = 256 << 20

// boxCloneflags are the namespaces of a box; userns adds a user namespace
// (attunectl runs as an ordinary user).
func boxCloneflags(userns bool) uintptr {
	f := uintptr(syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC)
	if userns {
		f |= syscall.CLONE_NEWUSER
	}
	return f
}

// boxAttr adds the namespaces of a box to attr; as an ordinary user with a
// user namespace mapping uid and gid to themselves.
func boxAttr(attr *syscall.SysProcAttr, userns bool) {
	attr.Cloneflags |= boxCloneflags(userns)
	if userns {
		uid, gid := os.Geteuid(), os.Getegid()
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
		attr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
	}
}

// setupBox runs in the helper, PID 1 of the new namespaces, before the
// command starts: it makes the mounts private, mounts /proc and the
// private temporary directories, creates HOME and hides b.Hide.
func setupBox(b boxConfig) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	// The paths to hide are resolved before /tmp is replaced (one may be
	// below it, e.g. the embedded server's socket directory).
	type hidden struct {
		path string
		dir  bool
	}
	var hide []hidden
	for _, p := range b.Hide {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue // nothing there to hide
		}
		fi, err := os.Stat(real)
		if err != nil {
			continue
		}
		hide = append(hide, hidden{real, fi.IsDir()})
	}
	// The kept directories are opened before the private directories
	// cover them, and bound back from those descriptors afterwards.
	var keep []*os.File
	defer func() {
		for _, f := range keep {
			f.Close()
		}
	}()
	for _, k := range b.Keep {
		if f, err := os.OpenFile(k, unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
			keep = append(keep, f)
		}
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("proc", "/proc", "proc", flags, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	size := b.TmpBytes
	if size == 0 {
		size = DefaultTmpBytes
	}
	for _, dir := range privateDirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		opts := "mode=1777,size=" + strconv.FormatUint(size, 10)
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("mounting a private %s: %w", dir, err)
		}
	}
	for _, f := range keep {
		var err error
		if fi, serr := f.Stat(); serr == nil && !fi.IsDir() {
			// A program right in /tmp: a file to bind onto.
			if err = os.MkdirAll(filepath.Dir(f.Name()), 0o755); err == nil {
				var target *os.File
				if target, err = os.OpenFile(f.Name(), os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
					target.Close()
				}
			}
		} else {
			err = os.MkdirAll(f.Name(), 0o755)
		}
		if err != nil {
			return fmt.Errorf("keeping %s visible: %w", f.Name(), err)
		}
		src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
		if err := unix.Mount(src, f.Name(), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("keeping %s visible: %w", f.Name(), err)
		}
	}
	if err := os.Mkdir(BoxHome, 0o700); err != nil {
		return fmt.Errorf("creating HOME: %w", err)
	}
	if err := os.Chown(BoxHome, int(b.UID), int(b.GID)); err != nil {
		return fmt.Errorf("creating HOME: %w", err)
	}
	for _, h := range hide {
		var err error
		if h.dir {
			err = unix.Mount("tmpfs", h.path, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0,size=4096")
		} else {
			err = unix.Mount("/dev/null", h.path, "", unix.MS_BIND, "")
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hiding %s: %w", h.path, err)
		}
	}
	return nil
}

// privateDirs are the directories a box replaces by its own.
var privateDirs = []string{"/tmp", "/var/tmp", "/dev/shm"}

// keepDirs lists the directories below a private directory that a command
// needs (or the file, for a program right in /tmp): the top directory
// below /tmp (say) that holds its program, each
// absolute path among its arguments (an interpreter's script, a file it
// is to write) or its working directory. The whole top directory: a pack
// unpacked below /tmp keeps its layout.
func keepDirs(path, dir string, args []string) []string {
	var out []string
	add := func(p string) {
		if !filepath.IsAbs(p) {
			return
		}
		p = filepath.Clean(p)
		for _, d := range privateDirs {
			rest, ok := strings.CutPrefix(p, d+"/")
			if !ok {
				continue
			}
			top := d + "/" + strings.Split(rest, "/")[0]
			if _, err := os.Stat(top); err == nil && !slices.Contains(out, top) {
				out = append(out, top)
			}
		}
	}
	add(path)
	add(dir)
	for _, a := range args {
		add(a)
	}
	return out
}

// killBox kills every process of the box but the helper (its PID 1).
func killBox() { _ = syscall.Kill(-1, syscall.SIGKILL) }
