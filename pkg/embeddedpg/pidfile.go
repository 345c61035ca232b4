package embeddedpg

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pidFile is what a running postmaster writes to DataDir/postmaster.pid:
// its pid, data directory, start time, port, first socket directory, first
// listen address, shared memory key and (PostgreSQL 10+) its status.
type pidFile struct {
	pid       int
	port      int
	socketDir string
	listen    string
	status    string // "starting", "ready", "stopping", "standby" or ""
	lines     int
}

// readPidFile reads DataDir/postmaster.pid; os.ErrNotExist when no server
// owns the directory.
func readPidFile(dataDir string) (pidFile, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return pidFile{}, err
	}
	lines := strings.Split(string(b), "\n")
	var pf pidFile
	get := func(i int) string {
		if i < len(lines) {
			return strings.TrimSpace(lines[i])
		}
		return ""
	}
	pf.lines = len(lines)
	pf.pid, _ = strconv.Atoi(get(0))
	pf.port, _ = strconv.Atoi(get(3))
	pf.socketDir = get(4)
	pf.listen = get(5)
	pf.status = get(7)
	return pf, nil
}
