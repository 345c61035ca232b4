package main

// End-to-end test of issue 11, section 4: two instances with one hostname in
// different PID namespaces (containers with a fixed hostname:) never take
// each other's live row without --replace.

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

func TestSameHostnameOtherPIDNamespaceNeverTakesTheRow(t *testing.T) {
	t.Parallel()
	testsupport.RequireRoot(t, "unshare --pid --uts needs CAP_SYS_ADMIN")
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare(1) from util-linux is needed: %v", err)
	}
	for _, tc := range []struct {
		name string
		// holder and rival are how each container runs attunectl: exec'd
		// (PID 1 of its namespace) or under the shell.
		holder, rival string
	}{
		// Both are PID 1: main took "the holder's pid is mine" as dead.
		{"both PID 1", `exec "$0" "$@"`, `exec "$0" "$@"`},
		// The holder's pid (past 20, after twenty short processes) does
		// not exist in the rival's namespace: main took it as a dead local
		// process.
		{"holder pid above 20, rival PID 1", `for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /bin/true; done; "$0" "$@"; exit $?`, `exec "$0" "$@"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			container := func(script string, extra ...string) []string {
				args := []string{"--pid", "--uts", "--fork", "--mount-proc", "--kill-child", "sh", "-c", "hostname sensor-box && " + script, binary(t)}
				return append(args, append([]string{"sensor", "run", "--name", "boxed", "--heartbeat-interval", "300ms", "--runtimes", "shell"}, extra...)...)
			}
			a := startProgram(t, dbEnv(t, db), false, unshare, container(tc.holder)...)
			held := waitActive(t, a, db.Pool, "boxed")
			if held.Meta.Hostname != "sensor-box" {
				t.Fatalf("the holder's meta.hostname is %q; want sensor-box (its own UTS namespace)", held.Meta.Hostname)
			}
			for i := range 2 {
				b := startProgram(t, dbEnv(t, db), false, unshare, container(tc.rival)...)
				code := b.wait(t, 60*time.Second)
				if code != 1 || !strings.Contains(b.stderr.String(), "the name is held by a live sensor worker") {
					t.Errorf("rival %d with the same hostname in another PID namespace: exit %d; want 1, refused\n%s", i, code, b.stderr)
				}
			}
			// No flapping: the holder still runs, and still holds its row.
			time.Sleep(time.Second)
			if a.exited() {
				t.Fatalf("the holder exited:\n%s", a.stderr)
			}
			if r := readSensorRow(t, db.Pool, "boxed"); r.Meta.InstanceID != held.Meta.InstanceID || r.Status != "active" || r.Age > 5*time.Second {
				t.Errorf("the holder's row changed or went silent: %+v (held by %s)", r, held.Meta.InstanceID)
			}
			// With --replace the rival does take it.
			b := startProgram(t, dbEnv(t, db), false, unshare, container(tc.rival, "--replace")...)
			waitUntil(t, b, 30*time.Second, "the rival to take the row with --replace", func() bool {
				r, err := querySensorRow(db.Pool, "boxed")
				return err == nil && r.Status == "active" && r.Meta.InstanceID != held.Meta.InstanceID
			})
			if code := a.wait(t, 20*time.Second); code != 1 {
				t.Errorf("the replaced holder: exit %d; want 1\n%s", code, a.stderr)
			}
		})
	}
}
