package cli

import (
	"context"
	"encoding/json"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/placement"
)

// drainFleet is a database with two live sensor workers, w-busy holding
// one sensor under a live lease (no process runs it, so nobody hands it
// over) and w-idle holding nothing.
func drainFleet(t *testing.T) *dbtest.DB {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	r := rtExec(t, rtEnv(db, "/nonexistent"), `{ref: acme.held, runtime: core.sensor.shell, entrypoint: h.sh}`, "sensor", "add", "-f", "-")
	if r.Code != 0 {
		t.Fatalf("sensor add: %s", r.Stderr)
	}
	for _, q := range []string{
		`INSERT INTO worker (name, worker_role, worker_type, status, host, capabilities, meta, last_heartbeat)
		 VALUES ('w-busy', 'sensor', 'local', 'active', 'busy', '{"runtimes": ["shell"]}', '{}', now()),
		        ('w-idle', 'sensor', 'local', 'active', 'idle', '{"runtimes": ["shell"]}', '{}', now())`,
		`UPDATE sensor_workload_assignment SET worker = (SELECT id FROM worker WHERE name = 'w-busy'),
		   worker_instance = gen_random_uuid(), generation = 1, lease_expires_at = clock_timestamp() + interval '10 minutes',
		   assigned_at = now(), renewed_at = now()`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestWorkerCordonUncordon(t *testing.T) {
	t.Parallel()
	db := drainFleet(t)
	env := rtEnv(db, "/nonexistent")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	r := rtExec(t, env, "", "worker", "cordon", "w-idle", "--reason", "kernel upgrade")
	if r.Code != 0 || r.Stdout != "worker w-idle cordoned (kernel upgrade): it takes no new sensors and keeps the ones it holds\n" {
		t.Errorf("cordon: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	var by, reason string
	if err := db.Pool.QueryRow(context.Background(), `SELECT cordoned_by_name, cordon_reason FROM worker WHERE name = 'w-idle' AND cordoned`).Scan(&by, &reason); err != nil || by != me.Username || reason != "kernel upgrade" {
		t.Errorf("stored cordon: by %q, reason %q, %v; want %q", by, reason, err, me.Username)
	}
	r = rtExec(t, env, "", "worker", "cordon", "w-idle", "-o", "json")
	var c placement.Cordoned
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &c) != nil || !c.Cordoned || c.Changed || c.Reason != "kernel upgrade" || c.By != me.Username {
		t.Errorf("cordon again -o json: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "worker", "list", "w-idle")
	if r.Code != 0 || !strings.Contains(r.Stdout, "active,cordoned") {
		t.Errorf("worker list does not show the cordon:\n%s%s", r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "worker", "uncordon", "w-idle")
	if r.Code != 0 || r.Stdout != "worker w-idle uncordoned: it takes sensors again\n" {
		t.Errorf("uncordon: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "worker", "uncordon", "w-idle")
	if r.Code != 0 || r.Stdout != "worker w-idle was not cordoned\n" {
		t.Errorf("uncordon again: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, args := range [][]string{
		{"worker", "cordon", "w-nope"},
		{"worker", "uncordon", "w-nope"},
		{"worker", "drain", "w-nope"},
	} {
		r := rtExec(t, env, "", args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, `worker "w-nope": no such worker (see `+"`attunectl worker list`"+`); nothing was changed`) {
			t.Errorf("%v: exit %d\n%s", args, r.Code, r.Stderr)
		}
	}
	for _, args := range [][]string{
		{"worker", "cordon"},
		{"worker", "cordon", "a", "b"},
		{"worker", "cordon", "w-idle", "-o", "name"},
		{"worker", "drain", "w-idle", "--deadline", "0"},
		{"worker", "drain", "w-idle", "--deadline", "soon"},
		{"worker", "drain", "w-idle", "--budget", "0"},
		{"worker", "drain", "w-idle", "-o", "wide"},
	} {
		if r := rtExec(t, env, "", args...); r.Code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.Code, r.Stderr)
		}
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM worker WHERE cordoned`).Scan(&n); err != nil || n != 0 {
		t.Errorf("refused commands cordoned %d workers (%v)", n, err)
	}
}

// drain --wait of a worker that holds nothing returns at once with its
// summary; of a worker whose sensors nobody hands over, at the deadline.
func TestWorkerDrainWait(t *testing.T) {
	t.Parallel()
	db := drainFleet(t)
	env := rtEnv(db, "/nonexistent")
	r := rtExec(t, env, "", "worker", "drain", "w-idle", "--wait", "--deadline", "60")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if r.Code != 0 || len(lines) != 2 ||
		lines[0] != "worker w-idle cordoned and draining: it hands over up to 2 sensors per interval; what it holds after 1m is released" ||
		!strings.HasPrefix(lines[1], "worker w-idle drained in ") ||
		!strings.HasSuffix(lines[1], ": 0 handed over, 0 released at the deadline; it stays cordoned (`attunectl worker uncordon w-idle` lets it take sensors again)") {
		t.Errorf("drain --wait: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	start := time.Now()
	r = rtExec(t, env, "", "worker", "drain", "w-busy", "--wait", "--deadline", "1", "--budget", "5", "-o", "json")
	var st placement.DrainStatus
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil || st.FinishedAt == nil || st.AtDeadline != 1 || st.Held != 0 || st.Budget != 5 {
		t.Errorf("drain --wait past the deadline: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Errorf("drain --wait --deadline 1 took %s", d)
	}
}

// An interrupted --wait leaves the drain in place and says so (exit 130).
func TestWorkerDrainWaitInterrupted(t *testing.T) {
	t.Parallel()
	db := drainFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	app, out, _ := testApp("")
	err := runWorkerDrain(ctx, app, dbOf(db), workerDrainOptions{Name: "w-busy", Deadline: time.Hour, Budget: 2, Wait: true, Poll: 50 * time.Millisecond, Format: output.Table})
	if ExitCode(err) != ExitInterrupt || !strings.Contains(err.Error(), "interrupted: the drain of worker w-busy stays in place (it holds 1 sensor and ends at its deadline, ") ||
		!strings.Contains(err.Error(), "`attunectl worker uncordon w-busy` cancels it") {
		t.Errorf("interrupted: exit %d, %v", ExitCode(err), err)
	}
	if !strings.HasPrefix(out.String(), "worker w-busy cordoned and draining") {
		t.Errorf("stdout: %q", out)
	}
	st, err := placement.GetDrain(context.Background(), db.Handle(t), "w-busy")
	if err != nil || st.FinishedAt != nil || st.Held != 1 {
		t.Errorf("after the interrupt the drain is %+v, %v; want it unfinished, holding 1", st, err)
	}
}
