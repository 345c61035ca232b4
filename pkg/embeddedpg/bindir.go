package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoBinaries is wrapped by FindBinDir's error when no directory holds the
// PostgreSQL server binaries.
var ErrNoBinaries = errors.New("postgresql server binaries (initdb, pg_ctl, postgres) not found")

// serverBinaries must all be present in a bin directory for it to be usable.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// binSearchGlobs are the well-known install locations FindBinDir tries after
// PATH and pg_config, in this order; within one pattern the highest version
// wins. Tests replace it.
var binSearchGlobs = []string{
	"/usr/lib/postgresql/*/bin",         // Debian, Ubuntu
	"/usr/pgsql-*/bin",                  // PGDG packages on RHEL, Fedora
	"/usr/local/pgsql/bin",              // built from source
	"/opt/homebrew/opt/postgresql*/bin", // Homebrew on Apple silicon
	"/usr/local/opt/postgresql*/bin",    // Homebrew on Intel
	"/Applications/Postgres.app/Contents/Versions/*/bin",
}

// FindBinDir finds a directory holding initdb, pg_ctl and postgres: first
// through PATH, then `pg_config --bindir`, then the usual install locations
// (highest version first). Symbolic links are resolved, so a PATH entry that
// links to /usr/lib/postgresql/15/bin/initdb yields that directory.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates := []string{}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
		candidates = append(candidates, filepath.Dir(p))
		for _, dir := range candidates {
			if hasServerBinaries(dir) {
				return absDir(dir), nil
			}
		}
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
		cancel()
		if dir := strings.TrimSpace(string(out)); err == nil && dir != "" && hasServerBinaries(dir) {
			return absDir(dir), nil
		}
	}
	for _, pattern := range binSearchGlobs {
		matches, _ := filepath.Glob(pattern)
		sortByVersionDesc(matches)
		for _, dir := range matches {
			if hasServerBinaries(dir) {
				return absDir(dir), nil
			}
		}
	}
	searched := "PATH and `pg_config --bindir`"
	if len(binSearchGlobs) > 0 {
		searched = "PATH, `pg_config --bindir` and " + strings.Join(binSearchGlobs, ", ")
	}
	return "", fmt.Errorf("%w (searched %s): install the PostgreSQL server package "+
		"(Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql@16) "+
		"or point attunectl at a server with --database-url / ATTUNE__DATABASE__URL",
		ErrNoBinaries, searched)
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

func hasServerBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// checkBinDir explains what is missing from an explicitly configured BinDir.
func checkBinDir(dir string) error {
	var missing []string
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s missing from %s (point the bin directory at the PostgreSQL server binaries, or leave it empty to search PATH and the usual locations)",
			ErrNoBinaries, strings.Join(missing, ", "), dir)
	}
	return nil
}

var digitRuns = regexp.MustCompile(`\d+`)

// sortByVersionDesc orders paths like /usr/lib/postgresql/9.6/bin,
// /usr/lib/postgresql/16/bin by the numbers in them, highest first.
func sortByVersionDesc(paths []string) {
	key := func(p string) []int {
		var k []int
		for _, d := range digitRuns.FindAllString(p, -1) {
			n, _ := strconv.Atoi(d)
			k = append(k, n)
		}
		return k
	}
	sort.SliceStable(paths, func(i, j int) bool {
		a, b := key(paths[i]), key(paths[j])
		for n := 0; n < len(a) && n < len(b); n++ {
			if a[n] != b[n] {
				return a[n] > b[n]
			}
		}
		return len(a) > len(b)
	})
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?`)

// binaryVersion runs `postgres --version` and returns the full version
// ("15.13") and the major version as PG_VERSION spells it ("15", or "9.6").
func binaryVersion(ctx context.Context, binDir string) (full, major string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("running %s --version: %w (check that the PostgreSQL installation in %s is complete)", filepath.Join(binDir, "postgres"), err, binDir)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", "", fmt.Errorf("reading the version of %s: unexpected output %q", filepath.Join(binDir, "postgres"), strings.TrimSpace(string(out)))
	}
	full = m[1]
	major = m[1]
	if m[2] != "" {
		full += "." + m[2]
		if n, _ := strconv.Atoi(m[1]); n < 10 {
			major += "." + m[2]
		}
	}
	return full, major, nil
}
