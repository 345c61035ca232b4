package dbtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// NewStandby makes a streaming hot standby of primary (which must listen on
// loopback: NewServer with ListenAddress "127.0.0.1") with pg_basebackup -R,
// run as the server's user, and starts it on loopback. It is stopped and its
// files removed when the test ends.
func NewStandby(t testing.TB, primary *embeddedpg.Server) *embeddedpg.Server {
	t.Helper()
	root, err := makeRoot()
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	// Removed after the standby is stopped (cleanups run last-in first-out).
	t.Cleanup(func() { os.RemoveAll(root) })
	dataDir := filepath.Join(root, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	// The standby's files belong to the user the primary runs as.
	if fi, err := os.Stat(primary.DataDir()); err == nil && os.Geteuid() == 0 {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if err := os.Chown(dataDir, int(st.Uid), int(st.Gid)); err != nil {
				t.Fatalf("dbtest: %v", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := primary.Command(ctx, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port()), "-U", embeddedpg.DefaultSuperuser,
		"-D", dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dbtest: pg_basebackup: %v\n%s", err, out)
	}
	return NewServer(t, embeddedpg.Options{DataDir: dataDir, ListenAddress: "127.0.0.1"})
}
