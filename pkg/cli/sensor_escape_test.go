package cli

import (
	"strings"
	"testing"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// The sensor, event and cordon printers escape control characters of
// database values (a sensor ref, runtime ref, worker name, reason, selector,
// trigger ref and payload another tool wrote) in tables, wide tables, -o
// name and messages; JSON keeps them exact.
func TestSensorEventPrintersEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := t.Context()
	low := strings.ToLower(evil) // sensor and trigger refs are lower case
	for _, q := range []string{
		`INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat)
		 VALUES ('live-'||$2, 'sensor', 'local', 'active', 'h'||left($1::text, 0), '{}', '{}', now())`,
		`INSERT INTO sensor (ref, label, entrypoint, runtime, runtime_ref, enabled, worker_selector)
		 SELECT 'acme.s'||$1, 'x', 'x', id, ref||$2, true, jsonb_build_object('zone', $2::text) FROM runtime WHERE ref = 'core.sensor.shell'`,
		`INSERT INTO sensor (ref, label, entrypoint, runtime, runtime_ref, enabled)
		 SELECT 'acme.q'||$1, 'x', 'x', id, ref, true FROM runtime WHERE ref = 'core.sensor.shell' AND $2::text IS NOT NULL`,
		`INSERT INTO event (trigger_ref, payload, source_ref) VALUES ('acme.t'||$1, jsonb_build_object('k', $2::text), 'acme.s'||$1)`,
	} {
		if _, err := db.Pool.Exec(ctx, q, low, evil); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	env := rtEnv(db, "/nonexistent")
	if _, err := db.Pool.Exec(ctx, `
		WITH wl AS (INSERT INTO sensor_workload (sensor, workload_key) SELECT id, 'default' FROM sensor WHERE ref = 'acme.q'||$1 RETURNING id)
		INSERT INTO sensor_workload_state (workload, state, quarantined_at, last_reason) SELECT id, 'quarantined', now(), 'boom'||$2 FROM wl`, low, evil); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"sensor", "list"}, {"sensor", "list", "-o", "wide"}, {"sensor", "list", "-o", "name"},
		{"sensor", "disable", "acme.s" + low},
		{"event", "list"}, {"event", "list", "-o", "wide"},
		{"worker", "cordon", "live-" + evil, "--reason", "r" + evil},
		{"worker", "list", "-o", "wide"},
		{"sensor", "list", "acme.nope" + low},
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
			if !strings.Contains(strings.ToLower(r.Stdout+r.Stderr), `\x1b]0;owned\a\x1b[2`) {
				t.Errorf("the escaped value is missing:\nstdout %q\nstderr %q", r.Stdout, r.Stderr)
			}
		})
	}
	for _, args := range [][]string{{"sensor", "list", "-o", "json"}, {"event", "list", "-o", "json"}} {
		r := rtExec(t, env, "", args...)
		if r.Code != 0 || strings.Contains(r.Stdout, `\x1b]0;owned`) || !strings.Contains(r.Stdout, `\u001b]0;owned\u0007\u001b[2`) {
			t.Errorf("%v is not exact: exit %d\n%s\n%s", args, r.Code, r.Stdout, r.Stderr)
		}
	}
}
