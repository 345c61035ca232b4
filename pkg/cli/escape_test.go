package cli

import (
	"strings"
	"testing"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// evil holds the escape sequences an attacker who can write the worker or
// runtime table would plant: retitle the terminal, clear the screen, ring
// the bell, return the carriage to overwrite a line, a C1 CSI, and a
// right-to-left override that reorders what follows it on the screen.
const evil = "\x1b]0;owned\a\x1b[2J\r\u009b31m\u202egnp"

// rawControl reports the first raw control character in s, if any.
func rawControl(s string) (rune, bool) {
	for _, r := range s {
		if r == '\n' {
			continue
		}
		if r < ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return r, true
		}
	}
	return 0, false
}

// Every printer escapes control characters of database values — worker
// names, hosts, runtimes, runtime names and refs — in tables, wide tables,
// -o name and error lines, with colour off; JSON and YAML keep them exact.
func TestPrintersEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := t.Context()
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat) VALUES
		('live-'||$1, 'sensor', 'local', 'active', 'host-'||$1, jsonb_build_object('runtimes', jsonb_build_array('py'||$1), 'runtime_versions', jsonb_build_object('py'||$1, 'v'||$1)), jsonb_build_object('instance_id', 'i'||$1), now()),
		('dead-'||$1, 'sensor', 'local', 'active', 'host-'||$1, jsonb_build_object('runtimes', jsonb_build_array('py'||$1)), NULL, now() - interval '1 hour')`, evil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO runtime (ref, name, runtime_type, aliases, distributions)
		VALUES ('test.sensor.evil', 'Evil'||$1, 'sensor', ARRAY['a'||$1], '{"verification": {"always_available": true}}')`, evil); err != nil {
		t.Fatal(err)
	}
	env := rtEnv(db, "/nonexistent")
	for _, args := range [][]string{
		{"worker", "list"}, {"worker", "list", "-o", "wide"}, {"worker", "list", "-o", "name"},
		{"worker", "stale"}, {"worker", "stale", "-o", "wide"}, {"worker", "stale", "-o", "name"},
		{"worker", "prune", "--dry-run"}, {"worker", "prune", "--dry-run", "-o", "wide"}, {"worker", "prune", "--dry-run", "-o", "name"},
		{"runtime", "list"}, {"runtime", "list", "-o", "wide"},
		{"runtime", "verify", "test.sensor.evil"}, {"runtime", "verify", "test.sensor.evil", "-o", "wide"},
		{"runtime", "verify", "test.sensor.evil", "nope" + evil},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := rtExec(t, env, "", args...)
			if r.Code != 0 && !strings.Contains(args[len(args)-1], "nope") {
				t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
			}
			for name, out := range map[string]string{"stdout": r.Stdout, "stderr": r.Stderr} {
				if c, ok := rawControl(out); ok {
					t.Errorf("%s holds a raw %U:\n%q", name, c, out)
				}
			}
			if !strings.Contains(r.Stdout+r.Stderr, `\x1b]0;owned\a\x1b[2`) {
				t.Errorf("the escaped value is missing:\nstdout %q\nstderr %q", r.Stdout, r.Stderr)
			}
		})
	}
	for _, noun := range []string{"worker", "runtime"} {
		for _, f := range []string{"json", "yaml"} {
			r := rtExec(t, env, "", noun, "list", "-o", f)
			if r.Code != 0 || strings.Contains(r.Stdout, `\x1b]0;owned`) || !strings.Contains(r.Stdout, `\e]0;owned\a\e[2J`) && !strings.Contains(r.Stdout, `\u001b]0;owned\u0007\u001b[2J`) {
				t.Errorf("%s list -o %s is not exact: exit %d\n%s\n%s", noun, f, r.Code, r.Stdout, r.Stderr)
			}
			// JSON writes C1 and bidi characters as escapes: the same
			// value for a reader, nothing a terminal acts on.
			if c, ok := rawControl(r.Stdout); ok && f == "json" {
				t.Errorf("%s list -o json holds a raw %U", noun, c)
			}
		}
	}
}
