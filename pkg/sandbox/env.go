package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPATH is the PATH of a command when attunectl's own has none.
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ScrubEnv is the environment every command from the database starts
// with: PATH, HOME, LANG, LC_*, TZ, TMPDIR and the passthrough names
// (sensor.passthrough_env); everything else (ATTUNE__*, PG*, DATABASE_URL,
// tokens) is dropped. A missing PATH is replaced with DefaultPATH.
func ScrubEnv(environ, passthrough []string) []string {
	keep := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "TZ": true, "TMPDIR": true}
	for _, p := range passthrough {
		if p = strings.TrimSpace(p); p != "" {
			keep[p] = true
		}
	}
	var out []string
	hasPath := false
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		if keep[name] || strings.HasPrefix(name, "LC_") {
			out = append(out, kv)
			hasPath = hasPath || name == "PATH"
		}
	}
	if !hasPath {
		out = append(out, "PATH="+DefaultPATH)
	}
	return out
}

// ErrNotFound is returned by LookPath for a name no PATH entry holds.
var ErrNotFound = errors.New("not found on PATH")

// LookPath searches the absolute directories of pathEnv for an executable
// regular file called name. Empty and relative entries (".", "bin") are
// skipped: they would make the result depend on the working directory.
func LookPath(pathEnv, name string) (string, error) {
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// PathOf returns the PATH entry of env ("" when there is none).
func PathOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return ""
}
