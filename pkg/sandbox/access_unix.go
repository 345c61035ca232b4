//go:build unix

package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// MayRead reports whether u may read path (and, with exec, execute it),
// judged from the mode bits of the file and of every directory on the way
// (after symbolic links), as the kernel would for u. attunectl checks a
// sensor's entrypoint this way before it looks at it as root, so that what
// it reports about a path u cannot reach (missing, a directory, …) tells
// nothing u could not learn itself.
func (u User) MayRead(path string, exec bool) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil || !filepath.IsAbs(real) {
		return false
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil || !u.may(fi, 0o1) {
			return false
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return false
	}
	want := os.FileMode(0o4)
	if exec {
		want |= 0o1
	}
	return u.may(fi, want)
}

// may reports whether u has the permission bits want (r=4, w=2, x=1) on a
// file with fi's mode and owner. Root may everything but execute a file no
// one may execute.
func (u User) may(fi os.FileInfo, want os.FileMode) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	if u.UID == 0 {
		return want&0o1 == 0 || fi.IsDir() || mode&0o111 != 0
	}
	var bits os.FileMode
	switch {
	case st.Uid == u.UID:
		bits = mode >> 6
	case st.Gid == u.GID || slices.Contains(u.Groups, st.Gid):
		bits = mode >> 3
	default:
		bits = mode
	}
	return bits&want == want
}
