package placement_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/placement"
	"github.com/attune-automation/attunectl/pkg/sensors"
	"github.com/attune-automation/attunectl/pkg/workers"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// env is one test database with sensor workers on it.
type env struct {
	t    *testing.T
	db   *database.DB
	pool *pgxpool.Pool
	// interval is the workers' heartbeat interval; leases last three.
	interval time.Duration
}

func newEnv(t *testing.T, interval time.Duration) *env {
	t.Helper()
	d := dbtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, database.Options{URL: d.URL, Schema: d.Schema, MaxConns: 20})
	if err != nil {
		t.Fatalf("opening test database: %v", err)
	}
	t.Cleanup(db.Close)
	return &env{t: t, db: db, pool: db.Pool, interval: interval}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// spec describes a simulated worker.
type spec struct {
	name     string
	runtimes []string
	versions map[string]string
	labels   map[string]string
	taints   []placement.Taint
	capacity int
}

// worker is a registered worker and its placer.
type worker struct {
	name string
	reg  *workers.Registration
	p    *placement.Placer
}

func (e *env) worker(s spec) *worker {
	e.t.Helper()
	if s.capacity == 0 {
		s.capacity = 10
	}
	caps := workers.Capabilities{
		Runtimes: s.runtimes, MaxConcurrentSensors: s.capacity, SensorVersion: "test",
		RuntimeVersions: s.versions, HeartbeatInterval: e.interval.Seconds(),
	}
	caps.Extra = map[string]json.RawMessage{}
	if s.labels != nil {
		b, _ := json.Marshal(s.labels)
		caps.Extra["labels"] = b
	}
	if s.taints != nil {
		b, _ := json.Marshal(s.taints)
		caps.Extra["taints"] = b
	}
	inst := workers.Instance{ID: rand.Text(), PID: 4242, StartedAt: time.Now().UTC(), Hostname: "host-" + s.name, Version: "test"}
	reg := workers.NewRegistration(e.db, workers.RegistrationConfig{Name: s.name, Host: "host-" + s.name, Capabilities: caps, Instance: inst})
	if _, err := reg.Register(ctxT(e.t), workers.RegisterOptions{}); err != nil {
		e.t.Fatalf("registering %s: %v", s.name, err)
	}
	p := placement.New(e.db, placement.Config{WorkerID: reg.ID(), InstanceID: inst.ID, Interval: e.interval, Heartbeat: true, BalanceEvery: 1, Budget: 1})
	return &worker{name: s.name, reg: reg, p: p}
}

func (e *env) tick(ws ...*worker) {
	e.t.Helper()
	for _, w := range ws {
		if _, err := w.p.Tick(ctxT(e.t)); err != nil {
			e.t.Fatalf("tick of %s: %v", w.name, err)
		}
	}
}

func (e *env) addSensors(ss ...sensors.Sensor) {
	e.t.Helper()
	if _, err := sensors.Add(ctxT(e.t), e.db, ss, false); err != nil {
		e.t.Fatalf("adding sensors: %v", err)
	}
}

func shellSensors(n int) []sensors.Sensor {
	var out []sensors.Sensor
	for i := 0; i < n; i++ {
		out = append(out, sensors.Sensor{Ref: fmt.Sprintf("test.s%02d", i), Runtime: "core.sensor.shell", Entrypoint: "s.sh"})
	}
	return out
}

// owners maps sensor ref to the worker that holds an unexpired lease.
func (e *env) owners() map[string]string {
	e.t.Helper()
	rows, err := e.pool.Query(ctxT(e.t), `
		SELECT s.ref, coalesce(w.name, '') FROM sensor s
		JOIN sensor_workload sw ON sw.sensor = s.id
		JOIN sensor_workload_assignment a ON a.workload = sw.id
		LEFT JOIN worker w ON w.id = a.worker AND a.lease_expires_at > clock_timestamp()`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var ref, name string
		if err := rows.Scan(&ref, &name); err != nil {
			e.t.Fatal(err)
		}
		out[ref] = name
	}
	return out
}

// loads returns the number of sensors each worker holds, sorted.
func (e *env) loads(ws ...*worker) []int {
	own := e.owners()
	var out []int
	for _, w := range ws {
		n := 0
		for _, o := range own {
			if o == w.name {
				n++
			}
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// ledgerReasons counts the ledger's span ends by reason.
func (e *env) ledgerReasons() map[string]int {
	e.t.Helper()
	rows, err := e.pool.Query(ctxT(e.t), `SELECT end_reason, count(*) FROM sensor_ownership WHERE ended_at IS NOT NULL GROUP BY 1`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var r string
		var n int
		if err := rows.Scan(&r, &n); err != nil {
			e.t.Fatal(err)
		}
		out[r] = n
	}
	return out
}

// assertLedgerNeverOverlaps checks that no two ownership spans of one
// workload overlap in time.
func (e *env) assertLedgerNeverOverlaps() {
	e.t.Helper()
	var n int
	err := e.pool.QueryRow(ctxT(e.t), `
		SELECT count(*) FROM sensor_ownership x JOIN sensor_ownership y
		ON x.workload = y.workload AND x.id < y.id
		AND tstzrange(x.started_at, coalesce(x.ended_at, 'infinity')) && tstzrange(y.started_at, coalesce(y.ended_at, 'infinity'))`).Scan(&n)
	if err != nil {
		e.t.Fatal(err)
	}
	if n != 0 {
		e.t.Fatalf("%d pairs of ownership spans overlap in the ledger", n)
	}
}

func errorsIsStale(err error) bool { return errors.Is(err, fence.ErrStale) }
