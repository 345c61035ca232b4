package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// migrate down that would drop tables holding rows asks on a terminal, and
// otherwise needs --yes; empty tables (the seeded runtimes aside) go without.
func TestMigrateDownAsksBeforeDroppingRows(t *testing.T) {
	t.Parallel()
	down := func(db *dbtest.DB, stdin string, tty bool, args ...string) (int, string, string) {
		app, out, errOut := testApp(stdin)
		app.Environ = []string{"ATTUNE__DATABASE__URL=" + db.URL}
		app.SetStdinTTY(tty)
		app.SetStderrTTY(tty)
		code := Execute(context.Background(), app, append([]string{"migrate", "down"}, args...))
		return code, out.String(), errOut.String()
	}

	empty := dbtest.New(t)
	if code, out, errOut := down(empty, "", false, "--to", "0"); code != 0 || !strings.Contains(out, `schema "attune" is at version 0`) {
		t.Errorf("empty tables: exit %d\n%s%s", code, out, errOut)
	}

	db := dbtest.New(t)
	if _, err := db.Pool.Exec(t.Context(), `INSERT INTO worker (name, worker_type, status) VALUES ('w1', 'local', 'active');
		INSERT INTO runtime (ref, name, runtime_type) VALUES ('acme.sensor.ruby', 'Ruby', 'sensor')`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := down(db, "", false, "--to", "0")
	if code != ExitUsage || out != "" || errOut != "Error: rolling back schema \"attune\" to version 0 drops tables worker (1 row) and runtime (1 row): pass --yes to drop them, or back them up first (nothing was changed)\n" {
		t.Errorf("no terminal, no --yes: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	code, out, errOut = down(db, "n\n", true, "--to", "0")
	if code != ExitError || out != "" || errOut != "Roll back schema \"attune\" to version 0, dropping tables worker (1 row) and runtime (1 row)? [y/N] aborted: nothing was changed\n" {
		t.Errorf("declined: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	if code, out, errOut := down(db, "", false, "--to", "1"); code != 0 || !strings.Contains(out, "at version 1") {
		t.Errorf("down to 1 drops no table: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := down(db, "", false, "--yes"); code != 0 || !strings.Contains(out, "at version 0") {
		t.Errorf("--yes: exit %d\n%s%s", code, out, errOut)
	}
}
