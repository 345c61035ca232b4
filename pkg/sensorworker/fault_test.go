package sensorworker

// Fault tests: a fleet of sensor worker services (in-process, real clock,
// one connection pool each, as separate hosts would have) against a
// PostgreSQL server of the test's own that the test stops, restarts, locks
// or fails over. They check what the README's Reliability table states.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// faultInterval is the fleet's heartbeat interval (the 1 s).
const faultInterval = time.Second

// faultSlack is what the "within one interval" checks allow on top of the
// interval, for a loaded two-core CI machine.
const faultSlack = 500 * time.Millisecond

// fleetApp is the application_name of the fleet's connections, so that
// pg_stat_activity tells them from the test's own.
const fleetApp = "attunectl-fleet"

// fleet is n sensor worker services named fleet-00 … fleet-NN.
type fleet struct {
	t    *testing.T
	url  string
	svcs []*Service
	logs []*logBuffer
}

// migratedServer starts a server of the test's own on loopback TCP and
// migrates its database "attune".
func migratedServer(t *testing.T, opts embeddedpg.Options) (*embeddedpg.Server, string) {
	t.Helper()
	opts.ListenAddress = "127.0.0.1"
	srv := dbtest.NewServer(t, opts)
	url := srv.ConnString("attune")
	migrate(t, url)
	return srv, url
}

func migrate(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := database.Open(ctx, database.Options{URL: url, Schema: "attune"})
	if err != nil {
		t.Fatalf("connecting to migrate: %v", err)
	}
	defer db.Close()
	if err := database.MigrateUp(ctx, db); err != nil {
		t.Fatalf("migrating: %v", err)
	}
}

// startFleet starts n services heartbeating every faultInterval against url
// and waits until every one is registered.
func startFleet(t *testing.T, url string, n int) *fleet {
	t.Helper()
	f := &fleet{t: t, url: url}
	for i := range n {
		logs := &logBuffer{}
		svc, err := New(Config{
			Name:              fmt.Sprintf("fleet-%02d", i),
			Host:              fmt.Sprintf("fleet-host-%02d", i),
			HeartbeatInterval: faultInterval,
			ShutdownTimeout:   5 * time.Second,
			WaitForDatabase:   30 * time.Second,
			Version:           "9.9.9",
		}, Options{
			Connect: func(ctx context.Context) (*database.DB, error) {
				return database.Open(ctx, database.Options{URL: url, Schema: "attune", ConnectTimeout: 2 * time.Second, AppName: fleetApp})
			},
			Detect: func(context.Context, *database.DB) (detect.Result, error) { return result("shell"), nil },
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		f.svcs = append(f.svcs, svc)
		f.logs = append(f.logs, logs)
		t.Cleanup(func() { _ = svc.Stop() })
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, svc := range f.svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = svc.Start(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("starting fleet-%02d: %v\nlogs:\n%s", i, err, f.logs[i])
		}
	}
	return f
}

// alive fails the test when a service stopped on its own.
func (f *fleet) alive() {
	f.t.Helper()
	for i, svc := range f.svcs {
		select {
		case <-svc.Done():
			f.t.Fatalf("fleet-%02d stopped on its own: %v\nlogs:\n%s", i, svc.Err(), f.logs[i])
		default:
		}
	}
}

// stop stops every service (deregistering it).
func (f *fleet) stop() {
	f.t.Helper()
	for i, svc := range f.svcs {
		if err := svc.Stop(); err != nil {
			f.t.Errorf("stopping fleet-%02d: %v\nlogs:\n%s", i, err, f.logs[i])
		}
	}
}

// fleetRow is one worker row as the fault tests see it.
type fleetRow struct {
	ID            int64
	Status        string
	LastHeartbeat time.Time
}

// fleetRows reads the fleet's rows by name; an error when the server is unreachable.
func fleetRows(ctx context.Context, pool *pgxpool.Pool) (map[string]fleetRow, error) {
	rows, err := pool.Query(ctx, `SELECT name, id, coalesce(status::text, ''), coalesce(last_heartbeat, 'epoch')
		FROM attune.worker WHERE name LIKE 'fleet-%'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]fleetRow{}
	for rows.Next() {
		var name string
		var r fleetRow
		if err := rows.Scan(&name, &r.ID, &r.Status, &r.LastHeartbeat); err != nil {
			return nil, err
		}
		out[name] = r
	}
	return out, rows.Err()
}

// firstBeatsAfter polls pool until every one of names has a heartbeat later
// than after, and returns, per name, the first such heartbeat it saw (the
// polling is much faster than the interval, so it is the first one).
func firstBeatsAfter(t *testing.T, f *fleet, pool *pgxpool.Pool, names []string, after time.Time, within time.Duration) map[string]time.Time {
	t.Helper()
	first := map[string]time.Time{}
	deadline := time.Now().Add(within)
	var lastErr error
	for len(first) < len(names) {
		f.alive()
		if time.Now().After(deadline) {
			var missing []string
			for _, n := range names {
				if _, ok := first[n]; !ok {
					missing = append(missing, n)
				}
			}
			t.Fatalf("after %s, no heartbeat later than %s from %v (last error: %v)", within, after.Format(time.RFC3339Nano), missing, lastErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rows, err := fleetRows(ctx, pool)
		cancel()
		if err != nil {
			lastErr = err
			pool.Reset()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		for _, n := range names {
			if r, ok := rows[n]; ok && r.LastHeartbeat.After(after) {
				if _, seen := first[n]; !seen {
					first[n] = r.LastHeartbeat
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return first
}

func (f *fleet) names() []string {
	var out []string
	for i := range f.svcs {
		out = append(out, fmt.Sprintf("fleet-%02d", i))
	}
	return out
}

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// lagStats is the largest and the mean of the lags of the first heartbeats
// after a moment.
func lagStats(first map[string]time.Time, since time.Time) (maxLag, mean time.Duration) {
	var sum time.Duration
	for _, at := range first {
		d := at.Sub(since)
		sum += d
		maxLag = max(maxLag, d)
	}
	return maxLag, sum / time.Duration(max(len(first), 1))
}

// Fault 1: the database restarts under load. 20 workers heartbeat every
// second; the server is stopped for 5 s and started again. Every worker
// keeps running, heartbeats again within one interval of the server's
// return, and keeps its row (no duplicate, same id).
func TestFaultDatabaseRestartUnderLoad(t *testing.T) {
	srv, url := migratedServer(t, embeddedpg.Options{})
	f := startFleet(t, url, 20)
	pool := newPool(t, url)
	ctx := context.Background()

	// Running: every worker has heartbeated since the fleet was up.
	up := time.Now()
	firstBeatsAfter(t, f, pool, f.names(), up, 5*time.Second)
	before, err := fleetRows(ctx, pool)
	if err != nil || len(before) != 20 {
		t.Fatalf("rows before the restart: %d, %v", len(before), err)
	}

	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("stopping the server: %v", err)
	}
	stopped := time.Now()
	time.Sleep(5 * time.Second)
	f.alive()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("starting the server again: %v", err)
	}
	back := time.Now()
	pool.Reset()

	first := firstBeatsAfter(t, f, pool, f.names(), back, faultInterval+5*time.Second)
	maxLag, mean := lagStats(first, back)
	t.Logf("server down %s; after it accepted connections again, the 20 workers heartbeat within %s (mean %s, interval %s)",
		back.Sub(stopped).Round(time.Millisecond), maxLag.Round(time.Millisecond), mean.Round(time.Millisecond), faultInterval)
	if maxLag > faultInterval+faultSlack {
		t.Errorf("the last worker heartbeat %s after the restart; want within one interval (%s, +%s slack)", maxLag, faultInterval, faultSlack)
	}
	f.alive()

	after, err := fleetRows(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var total int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM attune.worker").Scan(&total); err != nil || total != 20 {
		t.Errorf("worker rows after the restart: %d (%v), want 20", total, err)
	}
	for name, b := range before {
		if a := after[name]; a.ID != b.ID || a.Status != "active" {
			t.Errorf("%s: id %d status %s after the restart, was id %d: want the same row, active", name, a.ID, a.Status, b.ID)
		}
	}
	for i, l := range f.logs {
		if !strings.Contains(l.String(), "heartbeat failed; retrying") || !strings.Contains(l.String(), "heartbeat succeeded again") {
			t.Errorf("fleet-%02d did not log the failure and the recovery:\n%s", i, l)
		}
	}
	f.stop()
}

// Fault 5: a stuck database. Another session holds an ACCESS EXCLUSIVE lock
// on the worker table for 10 s. Heartbeats time out (the service bounds
// each one) and are cancelled on the server, so they do not pile up behind
// the lock: at most one waits per worker at any moment. When the lock is
// released every worker heartbeats again within one interval.
func TestFaultStuckDatabase(t *testing.T) {
	_, url := migratedServer(t, embeddedpg.Options{})
	const n = 5
	f := startFleet(t, url, n)
	pool := newPool(t, url)
	ctx := context.Background()
	firstBeatsAfter(t, f, pool, f.names(), time.Now(), 5*time.Second)

	lock := testsupport.LockTable(t, pool, "attune.worker")
	locked := time.Now()
	maxWaiting, samples := 0, 0
	for time.Since(locked) < 10*time.Second {
		var waiting int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, fleetApp).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		maxWaiting = max(maxWaiting, waiting)
		samples++
		f.alive()
		time.Sleep(100 * time.Millisecond)
	}
	lock.Release()
	released := time.Now()

	first := firstBeatsAfter(t, f, pool, f.names(), released, faultInterval+5*time.Second)
	maxLag, mean := lagStats(first, released)
	timeouts := 0
	for i, l := range f.logs {
		c := strings.Count(l.String(), "heartbeat failed; retrying")
		timeouts += c
		if c < 2 || !strings.Contains(l.String(), "deadline exceeded") {
			t.Errorf("fleet-%02d: %d failed heartbeats logged while the table was locked for 10s, want timeouts:\n%s", i, c, l)
		}
	}
	t.Logf("table locked 10s: %d heartbeats timed out across %d workers, at most %d waiting on the lock at once (%d samples); after the release every worker heartbeat within %s (mean %s)",
		timeouts, n, maxWaiting, samples, maxLag.Round(time.Millisecond), mean.Round(time.Millisecond))
	if maxWaiting > n {
		t.Errorf("%d fleet statements waited on the lock at once, more than the %d workers: timed-out heartbeats pile up on the server", maxWaiting, n)
	}
	if maxLag > faultInterval+faultSlack {
		t.Errorf("the last worker heartbeat %s after the lock was released; want within one interval (%s, +%s slack)", maxLag, faultInterval, faultSlack)
	}
	// Nothing of the fleet is left waiting or running on the server.
	var leftover int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, fleetApp).Scan(&leftover); err != nil || leftover != 0 {
		t.Errorf("fleet sessions still waiting on a lock after the release: %d (%v)", leftover, err)
	}
	f.stop()
}

// Fault 2: failover. A primary and a streaming standby (pg_basebackup -R),
// both on loopback; the workers connect with a multi-host URL and
// target_session_attrs=read-write. The primary is stopped and the standby
// promoted: the workers heartbeat on the new primary, every row is there
// with its id. The test reports the time from the stop to the first (and
// the last worker's first) heartbeat on the new primary.
func TestFaultFailover(t *testing.T) {
	ctx := context.Background()
	primary := dbtest.NewServer(t, embeddedpg.Options{ListenAddress: "127.0.0.1"})
	migrate(t, primary.ConnString("attune"))
	standby := startStandby(t, primary)
	// Writes go to whichever of the two accepts them.
	url := fmt.Sprintf("postgres://attune@127.0.0.1:%d,127.0.0.1:%d/attune?sslmode=disable&target_session_attrs=read-write&connect_timeout=2&passfile=%s",
		primary.Port(), standby.Port(), primary.PassFile())

	const n = 20
	f := startFleet(t, url, n)
	primaryPool := newPool(t, primary.ConnString("attune"))
	standbyPool := newPool(t, standby.ConnString("attune"))
	firstBeatsAfter(t, f, primaryPool, f.names(), time.Now(), 5*time.Second)
	var inRecovery bool
	if err := standbyPool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("the standby is not in recovery (%v, %v)", inRecovery, err)
	}
	// The rows have reached the standby.
	waitRows := time.Now().Add(10 * time.Second)
	before, err := fleetRows(ctx, primaryPool)
	if err != nil {
		t.Fatal(err)
	}
	for {
		rows, err := fleetRows(ctx, standbyPool)
		if err == nil && len(rows) == n {
			break
		}
		if time.Now().After(waitRows) {
			t.Fatalf("the standby has %d of %d rows after 10s (%v)", len(rows), n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	stopAt := time.Now()
	if err := primary.Stop(ctx); err != nil {
		t.Fatalf("stopping the primary: %v", err)
	}
	stopped := time.Now()
	var promoted bool
	if err := standbyPool.QueryRow(ctx, "SELECT pg_promote(true, 30)").Scan(&promoted); err != nil || !promoted {
		t.Fatalf("promoting the standby: %v, %v", promoted, err)
	}
	promotedAt := time.Now()

	// A heartbeat later than the moment the primary was gone was written
	// on the new primary.
	first := firstBeatsAfter(t, f, standbyPool, f.names(), stopped, 30*time.Second)
	var firstAny time.Time
	for _, at := range first {
		if firstAny.IsZero() || at.Before(firstAny) {
			firstAny = at
		}
	}
	lastFirst, _ := lagStats(first, stopAt)
	t.Logf("failover: primary stopped in %s, standby promoted %s after the stop; first heartbeat on the new primary %s after the stop, all %d workers within %s of the stop (%s after the promotion)",
		stopped.Sub(stopAt).Round(time.Millisecond), promotedAt.Sub(stopAt).Round(time.Millisecond),
		firstAny.Sub(stopAt).Round(time.Millisecond), n, lastFirst.Round(time.Millisecond), (lastFirst - promotedAt.Sub(stopAt)).Round(time.Millisecond))
	if d := lastFirst - promotedAt.Sub(stopAt); d > faultInterval+faultSlack {
		t.Errorf("the last worker heartbeat on the new primary %s after the promotion; want within one interval (%s, +%s slack)", d, faultInterval, faultSlack)
	}

	// No row lost; the same rows, not new ones.
	after, err := fleetRows(ctx, standbyPool)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != n {
		t.Errorf("rows on the new primary: %d, want %d", len(after), n)
	}
	for name, b := range before {
		if a, ok := after[name]; !ok || a.ID != b.ID || a.Status != "active" {
			t.Errorf("%s on the new primary: %+v (present %v), was id %d: want the same row, active", name, a, ok, b.ID)
		}
	}
	f.alive()
	f.stop()
	var inactive int
	if err := standbyPool.QueryRow(ctx, "SELECT count(*) FROM attune.worker WHERE status = 'inactive'").Scan(&inactive); err != nil || inactive != n {
		t.Errorf("after stopping the fleet, %d rows inactive on the new primary (%v), want %d", inactive, err, n)
	}
}

// startStandby makes a streaming standby of primary with pg_basebackup -R
// (run as the server's user) in a directory of its own, and starts it on
// loopback.
func startStandby(t *testing.T, primary *embeddedpg.Server) *embeddedpg.Server {
	t.Helper()
	root, err := os.MkdirTemp("/tmp", "apg-sb-")
	if err != nil {
		t.Fatal(err)
	}
	// Removed after the standby is stopped (cleanups run last-in first-out).
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(root, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The standby's files belong to the user the primary runs as.
	fi, err := os.Stat(primary.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := os.Chown(dataDir, int(st.Uid), int(st.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := primary.Command(ctx, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port()), "-U", embeddedpg.DefaultSuperuser,
		"-D", dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	return dbtest.NewServer(t, embeddedpg.Options{DataDir: dataDir, ListenAddress: "127.0.0.1"})
}
