package workers

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/proc"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// openDB opens the test database the way attunectl does.
func openDB(t testing.TB, maxConns int32) (*database.DB, *dbtest.DB) {
	t.Helper()
	d := dbtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, database.Options{URL: d.URL, Schema: d.Schema, MaxConns: maxConns})
	if err != nil {
		t.Fatalf("opening test database: %v", err)
	}
	t.Cleanup(db.Close)
	return db, d
}

func testCaps() Capabilities {
	return Capabilities{
		Runtimes:             []string{"python", "shell"},
		MaxConcurrentSensors: 10,
		SensorVersion:        "1.2.3",
		RuntimeVersions:      map[string]string{"python": "3.11.7"},
		HeartbeatInterval:    30,
		DetectionSource:      "database",
	}
}

// newReg is a registration from a process on machine hostname (not this
// machine's name unless asked, so the dead-local-process rule stays out of
// the way).
func newReg(db *database.DB, name, hostname string) *Registration {
	return NewRegistration(db, RegistrationConfig{
		Name:         name,
		Host:         hostname,
		Capabilities: testCaps(),
		Instance:     Instance{ID: rand.Text(), PID: 4242, StartedAt: time.Now().UTC(), Hostname: hostname, Version: "1.2.3"},
	})
}

type rowState struct {
	ID            int64
	Role, Type    string
	Status, Host  string
	Capabilities  map[string]any
	Meta          map[string]any
	LastHeartbeat *time.Time
	Updated       time.Time
	AgeSeconds    float64
}

func readRow(t testing.TB, db *database.DB, name string) rowState {
	t.Helper()
	var r rowState
	var caps, meta []byte
	err := db.Pool.QueryRow(context.Background(), `
		SELECT id, worker_role::text, worker_type::text, coalesce(status::text, ''), coalesce(host, ''),
			capabilities, meta, last_heartbeat, updated,
			coalesce(extract(epoch FROM now() - last_heartbeat)::float8, -1)
		FROM worker WHERE name = $1`, name).Scan(&r.ID, &r.Role, &r.Type, &r.Status, &r.Host, &caps, &meta, &r.LastHeartbeat, &r.Updated, &r.AgeSeconds)
	if err != nil {
		t.Fatalf("reading worker %s: %v", name, err)
	}
	_ = json.Unmarshal(caps, &r.Capabilities)
	_ = json.Unmarshal(meta, &r.Meta)
	return r
}

func exec1(t testing.TB, db *database.DB, sql string, args ...any) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func register(t testing.TB, r *Registration, opts RegisterOptions) Registered {
	t.Helper()
	reg, err := r.Register(context.Background(), opts)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return reg
}

func TestRegisterInsertsSensorRow(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	r := newReg(db, "sensor-a", "host-a")
	reg := register(t, r, RegisterOptions{})
	if !reg.Inserted || reg.ID == 0 || r.ID() != reg.ID {
		t.Fatalf("Register = %+v, ID() = %d; want a new row", reg, r.ID())
	}
	row := readRow(t, db, "sensor-a")
	if row.Role != "sensor" || row.Type != "local" || row.Status != "active" || row.Host != "host-a" {
		t.Errorf("row = role %s type %s status %s host %s; want sensor local active host-a", row.Role, row.Type, row.Status, row.Host)
	}
	if row.AgeSeconds < 0 || row.AgeSeconds > 5 {
		t.Errorf("last_heartbeat is %.1fs old by the database clock; want now()", row.AgeSeconds)
	}
	wantCaps := map[string]any{
		"runtimes": []any{"python", "shell"}, "max_concurrent_sensors": 10.0, "sensor_version": "1.2.3",
		"runtime_versions": map[string]any{"python": "3.11.7"}, "heartbeat_interval": 30.0, "detection_source": "database",
	}
	if fmt.Sprint(row.Capabilities) != fmt.Sprint(wantCaps) {
		t.Errorf("capabilities = %v\nwant %v", row.Capabilities, wantCaps)
	}
	for _, k := range []string{"instance_id", "pid", "started_at", "hostname", "version"} {
		if _, ok := row.Meta[k]; !ok {
			t.Errorf("meta has no %q: %v", k, row.Meta)
		}
	}
	if row.Meta["instance_id"] != r.Instance().ID {
		t.Errorf("meta.instance_id = %v, want %s", row.Meta["instance_id"], r.Instance().ID)
	}

	// The same instance registering again keeps its row.
	again := register(t, r, RegisterOptions{})
	if again.Inserted || again.ID != reg.ID {
		t.Errorf("second Register = %+v; want the same row (id %d) updated", again, reg.ID)
	}
}

func TestRegisterRefusesLiveHolder(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	a := newReg(db, "sensor-x", "web2")
	register(t, a, RegisterOptions{})
	exec1(t, db, `UPDATE worker SET last_heartbeat = now() - interval '12 seconds' WHERE name = 'sensor-x'`)

	b := newReg(db, "sensor-x", "web1")
	_, err := b.Register(context.Background(), RegisterOptions{})
	if !errors.Is(err, ErrNameInUse) {
		t.Fatalf("Register by another instance = %v; want ErrNameInUse", err)
	}
	var e *NameInUseError
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not a *NameInUseError", err)
	}
	for _, want := range []string{`"sensor-x"`, "live sensor worker on host web2 (pid 4242)", "last heartbeat 12s ago", "--replace", "wait 1m18s until it is stale (no heartbeat for 1m30s)", "--name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
	if b.ID() != 0 {
		t.Errorf("refused registration has ID %d", b.ID())
	}
	if row := readRow(t, db, "sensor-x"); row.Meta["instance_id"] != a.Instance().ID || row.Host != "web2" {
		t.Errorf("the holder's row changed: %+v", row)
	}
}

func TestRegisterTakesOverRowThatIsNotLive(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	cases := []struct {
		name  string
		setup string // run on the holder's row
		take  bool
	}{
		{"heartbeat older than default grace", `last_heartbeat = now() - interval '91 seconds'`, true},
		{"heartbeat younger than default grace", `last_heartbeat = now() - interval '80 seconds'`, false},
		{"heartbeat older than advertised grace", `capabilities = capabilities || '{"heartbeat_interval": 1}', last_heartbeat = now() - interval '4 seconds'`, true},
		{"heartbeat younger than advertised grace", `capabilities = capabilities || '{"heartbeat_interval": 1}', last_heartbeat = now() - interval '1 seconds'`, false},
		{"non-numeric interval counts as default", `capabilities = capabilities || '{"heartbeat_interval": "1"}', last_heartbeat = now() - interval '4 seconds'`, false},
		{"never heartbeat", `last_heartbeat = NULL`, true},
		{"inactive", `status = 'inactive'`, true},
		{"error status", `status = 'error'`, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("sensor-%d", i)
			holder := newReg(db, name, "old-host")
			register(t, holder, RegisterOptions{})
			exec1(t, db, `UPDATE worker SET `+tc.setup+` WHERE name = $1`, name)

			b := newReg(db, name, "new-host")
			reg, err := b.Register(context.Background(), RegisterOptions{})
			if !tc.take {
				if !errors.Is(err, ErrNameInUse) {
					t.Fatalf("Register = %+v, %v; want ErrNameInUse", reg, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			row := readRow(t, db, name)
			if reg.Inserted || reg.ID != holder.ID() || row.Meta["instance_id"] != b.Instance().ID || row.Status != "active" || row.Host != "new-host" {
				t.Errorf("takeover: reg %+v, row %+v; want the old row with the new instance, active", reg, row)
			}
			if row.AgeSeconds > 5 {
				t.Errorf("last_heartbeat not refreshed: %.1fs old", row.AgeSeconds)
			}
		})
	}
}

func TestRegisterReplace(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	a := newReg(db, "sensor-r", "web2")
	register(t, a, RegisterOptions{})
	b := newReg(db, "sensor-r", "web1")
	reg := register(t, b, RegisterOptions{Replace: true})
	if reg.ID != a.ID() || reg.Inserted {
		t.Fatalf("Replace = %+v; want row %d taken over", reg, a.ID())
	}
	if row := readRow(t, db, "sensor-r"); row.Meta["instance_id"] != b.Instance().ID || row.Host != "web1" {
		t.Fatalf("row after --replace = %+v", row)
	}

	// The loser finds out at its next heartbeat, and does not deregister
	// the winner.
	_, err := a.Heartbeat(context.Background())
	var e *TakenOverError
	if !errors.Is(err, ErrTakenOver) || !errors.As(err, &e) {
		t.Fatalf("loser's Heartbeat = %v; want a *TakenOverError", err)
	}
	for _, want := range []string{`"sensor-r"`, "taken over by another instance", "on web1, pid 4242", b.Instance().ID, "--name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
	if err := a.Deregister(context.Background()); !errors.Is(err, ErrTakenOver) {
		t.Errorf("loser's Deregister = %v; want ErrTakenOver", err)
	}
	if row := readRow(t, db, "sensor-r"); row.Status != "active" {
		t.Errorf("winner's row is %s after the loser deregistered; want active", row.Status)
	}
}

func TestRegisterNeverTakesAnotherRolesRow(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	for role, article := range map[string]string{"action": "an", "hybrid": "a"} {
		t.Run(role, func(t *testing.T) {
			name := "worker-" + role
			// Stale and inactive: a sensor row like this would be taken.
			exec1(t, db, `INSERT INTO worker (name, worker_type, worker_role, host, status, last_heartbeat)
				VALUES ($1, 'remote', $2::worker_role_enum, 'exec-1', 'inactive', now() - interval '1 day')`, name, role)
			b := newReg(db, name, "web1")
			_, err := b.Register(context.Background(), RegisterOptions{Replace: true})
			if !errors.Is(err, ErrNameInUse) {
				t.Fatalf("Register --replace over an %s row = %v; want ErrNameInUse", role, err)
			}
			for _, want := range []string{"belongs to " + article + " " + role + " worker", "on host exec-1", "not even with --replace", "--name"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
			if row := readRow(t, db, name); row.Role != role || row.Type != "remote" || row.Status != "inactive" || row.Meta != nil {
				t.Errorf("the %s row changed: %+v", role, row)
			}
		})
	}
}

// A row whose process certainly ended on this machine is taken at once;
// certainty comes from the identity in its meta (boot id, PID namespace,
// start time), never from the hostname: containers with one hostname in
// different PID namespaces (each its own PID 1) must not take each other's
// row.
func TestRegisterTakesRowOfDeadProcessOnThisMachine(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatalf("hostname: %v", err)
	}
	// A pid that certainly ran and exited.
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatalf("running true: %v", err)
	}
	deadPID := c.Process.Pid
	here := proc.Self()
	otherNS := here
	otherNS.PIDNamespace = "pid:[1]"
	otherBoot := here
	otherBoot.BootID = "00000000-0000-0000-0000-000000000000"
	me := NewInstance("test")

	for _, tc := range []struct {
		name     string
		hostname string
		pid      int
		identity proc.Identity
		take     bool
	}{
		{"dead process on this machine", hostname, deadPID, here, true},
		{"live process on this machine", hostname, 1, proc.Of(1), false},
		{"dead pid of another PID namespace with our hostname", hostname, deadPID, otherNS, false},
		{"our own pid in another PID namespace with our hostname", hostname, me.PID, otherNS, false},
		{"dead pid of another boot", hostname, deadPID, otherBoot, false},
		{"dead pid without identity (older attunectl)", hostname, deadPID, proc.Identity{}, false},
		{"dead pid on another machine", "elsewhere", deadPID, proc.Identity{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "sensor-" + strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(tc.name)
			holder := NewRegistration(db, RegistrationConfig{Name: name, Host: tc.hostname, Capabilities: testCaps(),
				Instance: Instance{ID: rand.Text(), PID: tc.pid, Hostname: tc.hostname, Identity: tc.identity}})
			register(t, holder, RegisterOptions{})
			inst := me
			inst.ID = rand.Text()
			r := NewRegistration(db, RegistrationConfig{Name: name, Host: hostname, Capabilities: testCaps(), Instance: inst})
			_, err := r.Register(context.Background(), RegisterOptions{})
			if tc.take && err != nil {
				t.Fatalf("Register over a dead local holder: %v", err)
			}
			if !tc.take && !errors.Is(err, ErrNameInUse) {
				t.Fatalf("Register = %v; want ErrNameInUse", err)
			}
		})
	}
}

// The identity is stored in meta at registration, next to the seed's keys.
func TestRegisterStoresProcessIdentity(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 2)
	r := NewRegistration(db, RegistrationConfig{Name: "sensor-ident", Host: "h", Capabilities: testCaps(), Instance: NewInstance("1")})
	register(t, r, RegisterOptions{})
	var boot, ns, start string
	err := db.Pool.QueryRow(context.Background(), `SELECT meta->>'boot_id', meta->>'pid_namespace', meta->>'process_start'
		FROM worker WHERE name = 'sensor-ident'`).Scan(&boot, &ns, &start)
	if err != nil {
		t.Fatal(err)
	}
	self := proc.Self()
	if boot != self.BootID || ns != self.PIDNamespace || start != strconv.FormatUint(self.StartTime, 10) {
		t.Errorf("meta identity = %q %q %q; want %+v", boot, ns, start, self)
	}
}

// TestRegisterConcurrent registers 50 workers at once, 5 of them under a
// name another one also uses: exactly one of each pair wins, the other gets
// ErrNameInUse, and no unique_violation escapes.
func TestRegisterConcurrent(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 25)
	const n, dups = 50, 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		name := fmt.Sprintf("sensor-%02d", i)
		if i >= n-dups {
			name = fmt.Sprintf("sensor-%02d", i-(n-dups)) // same as one of the first five
		}
		r := newReg(db, name, fmt.Sprintf("host-%02d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = r.Register(context.Background(), RegisterOptions{})
		}()
	}
	close(start)
	wg.Wait()
	ok, inUse := 0, 0
	for i, err := range errs {
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrNameInUse):
			inUse++
		case errors.As(err, &pgErr):
			t.Errorf("worker %d: raw PostgreSQL error escaped: %v", i, err)
		default:
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if ok != n-dups || inUse != dups {
		t.Errorf("%d registered, %d refused; want %d and %d", ok, inUse, n-dups, dups)
	}
	var rows int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM worker`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != n-dups {
		t.Errorf("%d rows; want %d", rows, n-dups)
	}
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	r := newReg(db, "sensor-hb", "web1")
	if _, err := r.Heartbeat(context.Background()); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("Heartbeat before Register = %v; want ErrNotRegistered", err)
	}
	register(t, r, RegisterOptions{})
	exec1(t, db, `UPDATE worker SET last_heartbeat = now() - interval '1 minute', status = 'error',
		updated = '2000-01-01', capabilities = capabilities || '{"other": 1}' WHERE name = 'sensor-hb'`)
	before := readRow(t, db, "sensor-hb")
	at, err := r.Heartbeat(context.Background())
	if err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	after := readRow(t, db, "sensor-hb")
	if after.LastHeartbeat == nil || !after.LastHeartbeat.Equal(at) || !at.After(*before.LastHeartbeat) || after.AgeSeconds > 5 {
		t.Errorf("last_heartbeat %v -> %v (returned %v); want now()", before.LastHeartbeat, after.LastHeartbeat, at)
	}
	if after.Status != "active" {
		t.Errorf("status = %s after a heartbeat; want active", after.Status)
	}
	if !after.Updated.Equal(before.Updated) || fmt.Sprint(after.Capabilities) != fmt.Sprint(before.Capabilities) {
		t.Errorf("heartbeat touched more than last_heartbeat and status: updated %v -> %v, capabilities %v -> %v",
			before.Updated, after.Updated, before.Capabilities, after.Capabilities)
	}

	// Pruned: the heartbeat says so, and Register makes a new row.
	exec1(t, db, `DELETE FROM worker WHERE name = 'sensor-hb'`)
	if _, err := r.Heartbeat(context.Background()); !errors.Is(err, ErrRowGone) || !strings.Contains(err.Error(), "deleted (pruned?)") {
		t.Fatalf("Heartbeat of a deleted row = %v; want ErrRowGone", err)
	}
	old := r.ID()
	reg := register(t, r, RegisterOptions{})
	if !reg.Inserted || reg.ID == old {
		t.Errorf("re-Register = %+v; want a new row", reg)
	}
	if _, err := r.Heartbeat(context.Background()); err != nil {
		t.Errorf("Heartbeat after re-registering: %v", err)
	}
}

// TestHeartbeatStatementIsHOT checks that the heartbeat statement changes
// no indexed column, so PostgreSQL updates the row in place (a HOT update)
// and a worker table beaten every few seconds does not bloat its indexes.
func TestHeartbeatStatementIsHOT(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	r := newReg(db, "sensor-hot", "web1")
	reg := register(t, r, RegisterOptions{})
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	const beats = 5
	for range beats {
		if _, err := tx.Exec(ctx, heartbeatSQL, reg.ID, r.Instance().ID); err != nil {
			t.Fatal(err)
		}
	}
	var upd, hot int64
	if err := tx.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'worker'::regclass`).Scan(&upd, &hot); err != nil {
		t.Fatal(err)
	}
	if upd != beats || hot != beats {
		t.Errorf("%d heartbeats: %d updates, %d of them HOT; want all HOT", beats, upd, hot)
	}
}

func TestDeregister(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	r := newReg(db, "sensor-d", "web1")
	// Nothing to deregister: no row of this instance (an interrupted
	// Register that did not commit), and nothing changes.
	if err := r.Deregister(context.Background()); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("Deregister before Register = %v; want ErrNotRegistered", err)
	}
	register(t, r, RegisterOptions{})
	if err := r.Deregister(context.Background()); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if row := readRow(t, db, "sensor-d"); row.Status != "inactive" {
		t.Errorf("status = %s; want inactive", row.Status)
	}
	exec1(t, db, `DELETE FROM worker WHERE name = 'sensor-d'`)
	if err := r.Deregister(context.Background()); !errors.Is(err, ErrRowGone) {
		t.Errorf("Deregister of a deleted row = %v; want ErrRowGone", err)
	}
}

// TestHeartbeatAfterDeregisterDoesNotRevive: a heartbeat of this instance
// that reaches the server after its deregistration (cancelled by the client
// at shutdown, but already sent) leaves the row inactive; a new instance of
// the same name registers and heartbeats as usual.
func TestHeartbeatAfterDeregisterDoesNotRevive(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	ctx := context.Background()
	r := newReg(db, "sensor-late", "web1")
	register(t, r, RegisterOptions{})
	if err := r.Deregister(ctx); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if _, err := r.Heartbeat(ctx); err == nil {
		t.Errorf("a heartbeat after deregistration succeeded")
	}
	if row := readRow(t, db, "sensor-late"); row.Status != "inactive" {
		t.Fatalf("a heartbeat after deregistration made the row %s; want it inactive", row.Status)
	}
	next := newReg(db, "sensor-late", "web1")
	register(t, next, RegisterOptions{})
	if _, err := next.Heartbeat(ctx); err != nil {
		t.Fatalf("the next instance's heartbeat: %v", err)
	}
	row := readRow(t, db, "sensor-late")
	if row.Status != "active" || row.Meta["deregistered_instance"] != nil {
		t.Errorf("after the next instance registered: status %s, meta %v", row.Status, row.Meta)
	}
}

func TestUpdateCapabilitiesKeepsOtherToolsKeys(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	r := newReg(db, "sensor-c", "web1")
	register(t, r, RegisterOptions{})
	exec1(t, db, `UPDATE worker SET capabilities = capabilities || '{"scheduler_weight": 5, "zone": "eu-1"}' WHERE name = 'sensor-c'`)

	caps := testCaps()
	caps.Runtimes = []string{"shell"}
	caps.RuntimeVersions = nil // python went away: its version must not linger
	if err := r.UpdateCapabilities(context.Background(), caps); err != nil {
		t.Fatalf("UpdateCapabilities: %v", err)
	}
	got := readRow(t, db, "sensor-c").Capabilities
	if fmt.Sprint(got["runtimes"]) != "[shell]" || got["runtime_versions"] != nil {
		t.Errorf("capabilities = %v; want runtimes [shell] and no runtime_versions", got)
	}
	if got["scheduler_weight"] != 5.0 || got["zone"] != "eu-1" {
		t.Errorf("keys written by another tool were lost: %v", got)
	}
	if fmt.Sprint(r.Capabilities().Runtimes) != "[shell]" {
		t.Errorf("Capabilities() = %v; want the update", r.Capabilities())
	}

	// Re-registering (e.g. after a restart) keeps them too.
	r2 := NewRegistration(db, RegistrationConfig{Name: "sensor-c", Host: "web1", Capabilities: testCaps(),
		Instance: Instance{ID: r.Instance().ID, Hostname: "web1"}})
	register(t, r2, RegisterOptions{})
	if got := readRow(t, db, "sensor-c").Capabilities; got["zone"] != "eu-1" || fmt.Sprint(got["runtimes"]) != "[python shell]" {
		t.Errorf("after re-registering, capabilities = %v", got)
	}
}

func TestAddCapability(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t, 4)
	r := newReg(db, "sensor-add", "web1")
	ctx := context.Background()
	// Before Register: kept, and registered with the rest.
	if err := r.AddCapability(ctx, "gpu", true); err != nil {
		t.Fatalf("AddCapability before Register: %v", err)
	}
	register(t, r, RegisterOptions{})
	if got := readRow(t, db, "sensor-add").Capabilities; got["gpu"] != true {
		t.Errorf("capabilities = %v; want gpu: true", got)
	}
	exec1(t, db, `UPDATE worker SET capabilities = capabilities || '{"zone": "eu-1"}' WHERE name = 'sensor-add'`)
	if err := r.AddCapability(ctx, "max_concurrent_sensors", 20); err != nil {
		t.Fatalf("AddCapability(max_concurrent_sensors): %v", err)
	}
	if err := r.AddCapability(ctx, "labels", map[string]string{"tier": "gold"}); err != nil {
		t.Fatalf("AddCapability(labels): %v", err)
	}
	got := readRow(t, db, "sensor-add").Capabilities
	if got["max_concurrent_sensors"] != 20.0 || fmt.Sprint(got["labels"]) != "map[tier:gold]" || got["zone"] != "eu-1" || got["gpu"] != true {
		t.Errorf("capabilities = %v", got)
	}
	if c := r.Capabilities(); c.MaxConcurrentSensors != 20 || string(c.Extra["labels"]) != `{"tier":"gold"}` {
		t.Errorf("Capabilities() = %+v", c)
	}
	if err := r.AddCapability(ctx, "runtimes", "python"); err == nil || !strings.Contains(err.Error(), "does not have the type") {
		t.Errorf("AddCapability(runtimes, a string) = %v; want a type error", err)
	}
}

// BenchmarkHeartbeat measures one heartbeat (one statement, one round trip)
// against the test server over its Unix socket.
func BenchmarkHeartbeat(b *testing.B) {
	db, _ := openDB(b, 1)
	r := newReg(db, "sensor-bench", "web1")
	register(b, r, RegisterOptions{})
	ctx := context.Background()
	if _, err := r.Heartbeat(ctx); err != nil { // prepare the statement
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Heartbeat(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRegister measures the registration statement (an upsert of the
// same row by the same instance).
func BenchmarkRegister(b *testing.B) {
	db, _ := openDB(b, 1)
	r := newReg(db, "sensor-bench", "web1")
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.Register(ctx, RegisterOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
