package main

// Fault tests with real processes: a killed host, a thundering herd at boot,
// a locked worker table, and a server out of connections. (A database
// restart under 20 workers, a stuck database under heartbeats and a
// failover are in pkg/sensorworker/fault_test.go, with in-process services.)

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// rawErrorMarkers must never reach an operator: PostgreSQL's raw
// unique-violation text, SQLSTATEs of constraint errors, Go stack traces.
var rawErrorMarkers = []string{"duplicate key", "23505", "unique constraint", "violates", "panic", "goroutine ", ".go:"}

func checkNoRawErrors(t *testing.T, who, stderr string) {
	t.Helper()
	for _, m := range rawErrorMarkers {
		if strings.Contains(stderr, m) {
			t.Errorf("%s printed %q:\n%s", who, m, stderr)
		}
	}
}

// Fault 3: a killed host. `kill -9` of a running `sensor run` leaves its row
// active; it turns stale once its heartbeat is older than its grace (three
// intervals); `worker prune` marks it inactive; a new `sensor run` with the
// same name then registers without --replace — and not before: while the
// row is live the name is refused.
func TestFaultKilledHost(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	e := dbEnv(t, db)
	a := start(t, e, "sensor", "run", "--name", "k1", "--host", "host-a", "--heartbeat-interval", "1s", "--runtimes", "shell")
	first := waitRegistered(t, a, db.Pool, "k1")
	a.signal(t, syscall.SIGKILL)
	a.wait(t, 5*time.Second)
	killed := time.Now()
	// The host is gone: its replacement runs on another machine, which
	// cannot see that the old pid is dead (on this machine it could, and
	// would take the row at once: TestTakeoverOfCrashedWorkerOnThisHost).
	// meta.hostname names the machine a worker runs on.
	execSQL(t, db.Pool, `UPDATE worker SET meta = meta || '{"hostname": "host-a.gone.example"}' WHERE name = 'k1'`)

	if res := run(t, e, "worker", "stale", "-o", "name"); res.Code != 0 || strings.Contains(res.Stdout, "k1") {
		t.Fatalf("worker stale right after the kill: exit %d, stdout %q: the row should still be live", res.Code, res.Stdout)
	}
	res := run(t, e, "sensor", "run", "--name", "k1", "--host", "host-b", "--runtimes", "shell", "--once")
	if res.Code != 1 || !strings.Contains(res.Stderr, "the name is held by a live sensor worker on host host-a") {
		t.Fatalf("a new worker while the killed one's row is live: exit %d, want 1 and the name-in-use message\n%s", res.Code, res.Stderr)
	}
	checkNoRawErrors(t, "the refused worker", res.Stderr)

	waitFor(t, 15*time.Second, "k1 to be listed by worker stale", func() bool {
		res := run(t, e, "worker", "stale", "-o", "name")
		return res.Code == 0 && strings.Contains(res.Stdout, "k1")
	})
	staleAfter := time.Since(killed)
	r := readSensorRow(t, db.Pool, "k1")
	if r.Age < 3*time.Second {
		t.Errorf("k1 listed as stale %s after its last heartbeat; want no earlier than its grace (3 intervals of 1s)", r.Age)
	}
	if res := run(t, e, "worker", "list"); res.Code != 0 || !regexpLine(res.Stdout, `^k1\s+sensor\s+stale\s+host-a\s`) {
		t.Errorf("worker list should show k1 as stale:\n%s%s", res.Stdout, res.Stderr)
	}

	res = run(t, e, "worker", "prune", "--yes")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "marked inactive 1 stale worker") {
		t.Fatalf("worker prune --yes: exit %d\nstdout %q\nstderr %q", res.Code, res.Stdout, res.Stderr)
	}
	if s := readSensorRow(t, db.Pool, "k1").Status; s != "inactive" {
		t.Fatalf("k1 is %s after the prune, want inactive", s)
	}

	b := start(t, e, "sensor", "run", "--name", "k1", "--host", "host-b", "--heartbeat-interval", "1s", "--runtimes", "shell")
	r = waitRegistered(t, b, db.Pool, "k1")
	if r.ID != first.ID || r.Host != "host-b" || r.Meta.InstanceID == first.Meta.InstanceID {
		t.Errorf("the new worker's row: id %d host %s instance %s; want row %d taken over by host-b with a new instance", r.ID, r.Host, r.Meta.InstanceID, first.ID)
	}
	checkNoRawErrors(t, "the new worker", b.stderr.String())
	t.Logf("killed host: stale %s after the kill (grace 3s), pruned, name re-registered without --replace", staleAfter.Round(100*time.Millisecond))
	stopSensor(t, b, db.Pool, "k1")
}

// Fault 4: a thundering herd. 55 `sensor run` start at once: 50 distinct
// names and 5 repeating names of the 50. There are 50 rows; of each
// repeated pair one registers and the other exits 1 with the name-in-use
// message — no raw unique-violation error, no stack trace.
func TestFaultThunderingHerd(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	e := dbEnv(t, db)
	const distinct, dups = 50, 5
	type member struct {
		name string
		p    *proc
	}
	var herd []member
	begin := time.Now()
	for i := range distinct + dups {
		name := fmt.Sprintf("herd-%02d", i%distinct)
		herd = append(herd, member{name, start(t, e, "sensor", "run", "--name", name, "--host", fmt.Sprintf("herd-host-%02d", i),
			"--heartbeat-interval", "1s", "--runtimes", "shell", "--wait-for-database", "1m")})
	}
	exitedCount := func() int {
		n := 0
		for _, m := range herd {
			if m.p.exited() {
				n++
			}
		}
		return n
	}
	activeRows := func() int {
		var n int
		_ = db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM worker WHERE status = 'active' AND last_heartbeat IS NOT NULL").Scan(&n)
		return n
	}
	waitFor(t, time.Minute, "50 workers registered and 5 refused", func() bool {
		return activeRows() == distinct && exitedCount() == dups
	})
	settled := time.Since(begin)
	time.Sleep(500 * time.Millisecond) // a sixth exit would show now
	if n := exitedCount(); n != dups {
		t.Fatalf("%d of the herd exited, want %d", n, dups)
	}
	var total int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM worker").Scan(&total); err != nil || total != distinct {
		t.Errorf("worker rows: %d (%v), want %d", total, err, distinct)
	}
	winners := map[string]int{}
	for _, m := range herd {
		if !m.p.exited() {
			winners[m.name] = m.p.cmd.Process.Pid
			checkNoRawErrors(t, m.name+" (running)", m.p.stderr.String())
			continue
		}
		code := m.p.wait(t, time.Second)
		stderr := m.p.stderr.String()
		if code != 1 || !strings.Contains(stderr, `registering sensor worker "`+m.name+`": the name is held by a live sensor worker on host herd-host-`) ||
			!strings.Contains(stderr, "pass --replace to take the name over") {
			t.Errorf("refused %s: exit %d, want 1 and the name-in-use message:\n%s", m.name, code, stderr)
		}
		checkNoRawErrors(t, m.name+" (refused)", stderr)
	}
	if len(winners) != distinct {
		t.Errorf("%d distinct names hold a running worker, want %d", len(winners), distinct)
	}
	for name, pid := range winners {
		if r := readSensorRow(t, db.Pool, name); r.Meta.PID != pid || r.Status != "active" {
			t.Errorf("%s: row of pid %d (%s), but the running worker is pid %d", name, r.Meta.PID, r.Status, pid)
		}
	}
	t.Logf("thundering herd: %d started at once; %d registered and %d refused within %s", distinct+dups, distinct, dups, settled.Round(10*time.Millisecond))

	for _, m := range herd {
		if !m.p.exited() {
			m.p.signal(t, syscall.SIGTERM)
		}
	}
	for _, m := range herd {
		if code := m.p.wait(t, 20*time.Second); code != 0 && winners[m.name] == m.p.cmd.Process.Pid {
			t.Errorf("%s: exit %d after SIGTERM\n%s", m.name, code, m.p.stderr)
		}
	}
	var active int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM worker WHERE status <> 'inactive'").Scan(&active); err != nil || active != 0 {
		t.Errorf("%d rows not inactive after stopping the herd (%v)", active, err)
	}
}

// Fault 5, for the operator: `worker list` on a worker table that another
// session holds an ACCESS EXCLUSIVE lock on gives up after
// database.statement_timeout with a message that says the table is locked,
// by whom, and what to do.
func TestFaultWorkerListOnLockedTable(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	execSQL(t, db.Pool, `INSERT INTO worker (name, worker_role, worker_type, status, host, last_heartbeat) VALUES ('w1', 'sensor', 'local', 'active', 'h1', now())`)
	lockPID := testsupport.LockTable(t, db.Pool, "worker").PID

	begin := time.Now()
	res := run(t, dbEnv(t, db, "ATTUNE__DATABASE__STATEMENT_TIMEOUT=2"), "worker", "list")
	took := time.Since(begin)
	want := "timed out after 2s: the worker table is locked or the server is overloaded (locked exclusively by pid " + strconv.Itoa(lockPID)
	if res.Code != 1 || !strings.Contains(res.Stderr, want) || !strings.Contains(res.Stderr, "retry later") {
		t.Errorf("worker list on a locked table: exit %d, want 1 and %q\n%s", res.Code, want, res.Stderr)
	}
	checkNoRawErrors(t, "worker list", res.Stderr)
	if took > 10*time.Second {
		t.Errorf("worker list gave up after %s; want about its 2s statement timeout", took)
	}
	t.Logf("worker list on a locked table gave up after %s: %s", took.Round(10*time.Millisecond), strings.TrimSpace(res.Stderr))
}

// Fault 6: the server's connections are exhausted by other clients. A
// `sensor run` starting then says so and retries (no crash) until a
// connection frees up; a running one whose connection is lost while the
// server is full logs the failed heartbeats, keeps running, and heartbeats
// again once a connection is free.
func TestFaultConnectionLimits(t *testing.T) {
	t.Parallel()
	srv := dbtest.NewServer(t, embeddedpg.Options{ListenAddress: "127.0.0.1", Settings: map[string]string{"max_connections": "12"}})
	url := srv.ConnString("attune")
	e := env(t, "ATTUNE__DATABASE__URL="+url)
	if res := run(t, e, "migrate", "up"); res.Code != 0 {
		t.Fatalf("migrate up: exit %d\n%s", res.Code, res.Stderr)
	}
	ctx := context.Background()
	// The test's own connection, opened before the server is full.
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = "attune"
	pcfg.MaxConns, pcfg.MinConns = 1, 1
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	hog := &connHog{t: t, url: url}
	defer hog.releaseAll()
	hog.fill()

	// Registration and heartbeats only: a worker that runs sensors also
	// ticks placement every interval and would win freed slots back at
	// once, which is right for it but not what this test watches.
	p := start(t, append(e, "ATTUNE__SENSOR__RUN_SENSORS=false"), "sensor", "run", "--name", "c1", "--heartbeat-interval", "1s", "--runtimes", "shell", "--wait-for-database", "1m")
	waitUntil(t, p, 20*time.Second, "the worker to report the full server", func() bool {
		return strings.Count(p.stderr.String(), "database not reachable; retrying") >= 2
	})
	if s := p.stderr.String(); !strings.Contains(s, "the server has no free connections") || !strings.Contains(s, "raise max_connections") {
		t.Errorf("the startup retries do not say that the server is out of connections:\n%s", s)
	}
	hog.release(2)
	waitRegistered(t, p, pool, "c1")

	// Running: cut the worker's connections and fill the server, until the
	// worker is without a connection on a full server (it may win a freed
	// slot back in between).
	before := strings.Count(p.stderr.String(), "heartbeat failed; retrying")
	workerConns := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'attunectl'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			t.Fatal("could not leave the worker without a connection on a full server")
		}
		execSQL(t, pool, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'attunectl'")
		waitFor(t, 5*time.Second, "the worker's connections to end", func() bool { return workerConns() == 0 })
		hog.fill()
		if workerConns() == 0 {
			break
		}
	}
	waitUntil(t, p, 20*time.Second, "three failed heartbeats", func() bool {
		return strings.Count(p.stderr.String(), "heartbeat failed; retrying")-before >= 3
	})
	failures := p.stderr.String()
	if !strings.Contains(failures, "too many clients") && !strings.Contains(failures, "no free connections") {
		t.Errorf("the failed heartbeats do not say that the server is out of connections:\n%s", failures)
	}
	for _, line := range strings.Split(failures, "\n") {
		if strings.Contains(line, "heartbeat failed; retrying") {
			t.Logf("a failed heartbeat on the full server: %s", line)
			break
		}
	}
	hog.releaseAll()
	freed := time.Now()
	var r sensorRow
	waitUntil(t, p, 10*time.Second, "a heartbeat after connections were freed", func() bool {
		var err error
		r, err = querySensorRow(pool, "c1")
		return err == nil && r.LastHeartbeat.After(freed)
	})
	t.Logf("connection limits: startup retried until a connection was free; a running worker heartbeat again %s after connections were freed",
		r.LastHeartbeat.Sub(freed).Round(time.Millisecond))
	checkNoRawErrors(t, "sensor run", p.stderr.String())
	stopSensor(t, p, pool, "c1")
}

// connHog holds connections until the server refuses more ("too many
// clients", SQLSTATE 53300), as other clients exhausting it would.
type connHog struct {
	t     *testing.T
	url   string
	mu    sync.Mutex
	conns []*pgconn.PgConn
}

func (h *connHog) fill() {
	h.t.Helper()
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := pgconn.Connect(ctx, h.url)
		cancel()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "53300" {
			return
		}
		if err != nil {
			h.t.Fatalf("filling the server's connections: %v", err)
		}
		h.mu.Lock()
		h.conns = append(h.conns, c)
		h.mu.Unlock()
	}
	h.t.Fatal("the server accepted 200 more connections: max_connections is not in effect")
}

func (h *connHog) release(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ; n > 0 && len(h.conns) > 0; n-- {
		c := h.conns[len(h.conns)-1]
		h.conns = h.conns[:len(h.conns)-1]
		_ = c.Close(context.Background())
	}
}

func (h *connHog) releaseAll() { h.release(1 << 30) }

// regexpLine reports whether some line of s matches the pattern.
func regexpLine(s, pattern string) bool {
	return regexp.MustCompile(`(?m)` + pattern).MatchString(s)
}
