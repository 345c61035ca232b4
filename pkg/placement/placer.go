package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// Config is one worker instance's placement settings.
type Config struct {
	// WorkerID is the worker row's id; InstanceID its meta.instance_id
	// (mapped to Attune's uuid by fence.InstanceUUID).
	WorkerID   int64
	InstanceID string
	// Interval is the heartbeat interval: Tick is called once per interval.
	Interval time.Duration
	// Lease is how long a claim or renewal holds (default: the worker's
	// grace, three intervals, so a dead worker's sensors move within one
	// grace plus one interval).
	Lease time.Duration
	// Budget is how many sensors a worker hands over per interval when it
	// rebalances or drains (default 2).
	Budget int
	// BalanceEvery is how many ticks pass between balance checks when
	// nothing is waiting to be claimed (default 5).
	BalanceEvery int
	// Heartbeat folds the worker's heartbeat into the renewal statement, so
	// a tick costs one statement in steady state. The statement then also
	// proves the worker row is still this instance's; when it is not, Tick
	// returns an error matching workers.ErrTakenOver.
	Heartbeat bool
	// DeferRelease: a tick that hands sensors over (disabled, drained,
	// rebalanced) does not release them itself; it lists them in
	// Held.Handover, and the caller stops their processes first and then
	// calls ReleaseStopped, so the next owner never starts a sensor while
	// the old process still runs. ReleaseAll always releases.
	DeferRelease bool
	// AdoptOwnLeases claims at once, unexpired, the leases an older
	// instance of this worker held: right when that instance is known to be
	// gone (the worker row was taken over as stale, or from a crashed
	// process of this host). A worker that took its name over from a live
	// instance (--replace) leaves them: that instance releases them, or they
	// expire, so a sensor never has two owners.
	AdoptOwnLeases bool
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = workers.DefaultHeartbeatInterval
	}
	if c.Lease <= 0 {
		c.Lease = workers.GraceIntervals * c.Interval
	}
	if c.Budget <= 0 {
		c.Budget = 2
	}
	if c.BalanceEvery <= 0 {
		c.BalanceEvery = 5
	}
}

// Lease is one sensor this worker owns, with the fence its writes carry.
type Lease struct {
	fence.Fence
	SensorID  int64     `json:"sensor"`
	SensorRef string    `json:"sensor_ref"`
	ExpiresAt time.Time `json:"lease_expires_at"`
	// Version changes whenever what the sensor runs changes (its row, its
	// runtime's, its rule instances: database.SchemaFacts.SensorVersion),
	// as the renewal read it; "" after a claim. A worker re-reads a
	// definition whose version moved, so that an update reaches the sensor
	// it runs.
	Version string `json:"version"`
}

// Dropped is a sensor that stopped being this worker's during a tick.
type Dropped struct {
	Lease
	// Reason: lost (renewal failed: someone else holds it or the lease
	// expired), released (disabled or shutdown), drained, rebalanced.
	Reason string
}

// Held is what Tick returns: the sensors this worker owns after the tick,
// those it claimed in it (start them) and those it dropped (stop them at
// once; their fences are already stale or about to be).
type Held struct {
	Leases  []Lease
	Claimed []Lease
	Dropped []Dropped
	// Handover are the dropped leases still to release, with their
	// reasons (Config.DeferRelease): stop them, then ReleaseStopped.
	Handover []Dropped
	// NextLapse is how long until the earliest unexpired lease of another
	// worker runs out, by the database's clock (0: none): the caller ticks
	// again just after it, so a dead worker's sensors are claimed when its
	// leases lapse rather than at the next heartbeat.
	NextLapse time.Duration
	// Again: the last claim got fewer sensors than it wanted because other
	// workers took or locked them first; tick again soon rather than a
	// whole interval later.
	Again      bool
	Statements int // statements the tick sent, for the benchmark
}

// watchModulus is the modulus of the watch window: the peers of the last
// balance check, at least LapseWakers (every worker watches every other).
func (p *Placer) watchModulus() int64 {
	if p.self == nil {
		return LapseWakers
	}
	return int64(max(p.self.Peers, LapseWakers))
}

// LapseMargin is how long after a lease's end by the database's clock a
// worker ticks, so that the lease has lapsed by then (and its worker, whose
// grace ends with it, counts as gone); RetryAfter is the pause before a
// claim that lost sensors to other claimers tries again.
// LapseWakers is about how many workers watch each worker's leases and
// tick when they lapse unrenewed: every one in a fleet of up to that many;
// in a larger one those whose id falls in a window of that width (modulo
// the number of peers) from the owner's, so that a large fleet does not
// tick all at once at every lapse (its heartbeat ticks, spread over the
// interval, are frequent anyway).
const (
	LapseMargin = 100 * time.Millisecond
	RetryAfter  = 250 * time.Millisecond
	LapseWakers = 8
)

// Sooner says whether a worker ticking every interval should tick once
// more before its next heartbeat, and after how long: just after another
// worker's earliest lease lapses, or soon after a claim that lost sensors
// to other claimers.
func (h Held) Sooner(interval time.Duration) (time.Duration, bool) {
	var d time.Duration
	if h.NextLapse > 0 {
		d = h.NextLapse + LapseMargin
	}
	if h.Again && (d == 0 || RetryAfter < d) {
		d = RetryAfter
	}
	return d, d > 0 && d < interval
}

// Placer owns one worker instance's leases. Tick, ReleaseAll and Held are
// safe for concurrent use (calls are serialised).
type Placer struct {
	pool     *pgxpool.Pool
	cfg      Config
	instance string // uuid

	mu   sync.Mutex
	held map[int64]Lease
	// published is held as of the end of the last Tick, for readers that
	// must not wait for a tick in progress (Held).
	published atomic.Pointer[[]Lease]
	ticks     int
	lastSig   string
	lastShed  int // tick of the last rebalancing handoff
	// retry: the last claim found sensors it may run but got fewer than it
	// wanted (others claimed them first): try again next tick even if the
	// waiting set looks unchanged.
	retry bool
	// target is the fair share the last balance check computed; a worker
	// at or above it leaves newly waiting sensors to those below theirs
	// until its next balance check.
	target   int
	top      int64     // highest waiting workload id at the last renewal
	self     *selfView // this worker as the last balance check saw it
	seed     uint64
	shutdown bool
	// pending are the leases handed over (Config.DeferRelease) whose
	// processes may still run: renewed with the others, so they stay this
	// worker's until the process is gone, but neither held nor adopted
	// again; ReleaseStopped releases them.
	pending map[int64]pendingRelease
	// sql are the statements built for this database's schema: when a
	// sensor runs (database.SchemaFacts.SensorRuns) and what its version is.
	sql struct{ renew, balance, candidates string }
}

// pendingRelease is a handed-over lease waiting for its process to end.
type pendingRelease struct {
	d       Dropped
	stopped bool // the process is gone: release (again, if it failed)
}

// New prepares a Placer; nothing is written until Tick.
func New(db *database.DB, cfg Config) *Placer {
	pool := db.Pool
	cfg.defaults()
	p := &Placer{pool: pool, cfg: cfg, instance: fence.InstanceUUID(cfg.InstanceID), held: map[int64]Lease{}, pending: map[int64]pendingRelease{}, seed: rand.Uint64(), target: math.MaxInt}
	// A sensor is placed while it is on (and, on Attune's schema, has a
	// rule instance); a lease whose sensor is off is released.
	on := db.Facts.SensorRuns("s")
	p.sql.renew = renewStatement(on, db.Facts.SensorVersion("s", "rt"))
	fits := func(labels string) string { return db.Facts.SelectorsFit("s", labels) }
	p.sql.balance, p.sql.candidates = balanceStatement(on, fits), candidatesStatement(on, fits, db.Facts.MoreTolerations("s"))
	return p
}

// Instance is the uuid this worker instance holds assignments under.
func (p *Placer) Instance() string { return p.instance }

// Held returns the leases owned after the last tick, by workload, without
// waiting for a tick in progress.
func (p *Placer) Held() []Lease {
	if h := p.published.Load(); h != nil {
		return slices.Clone(*h)
	}
	return nil
}

func (p *Placer) publish() []Lease {
	h := p.sortedHeld()
	p.published.Store(&h)
	return h
}

func (p *Placer) sortedHeld() []Lease {
	out := make([]Lease, 0, len(p.held))
	for _, l := range p.held {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Lease) int { return int(a.Workload - b.Workload) })
	return out
}

// renewStatement renews every lease of this instance in one statement, and
// reports in the same row what the tick needs next: whether anything is
// waiting to be claimed (and a signature of it, so a worker that found
// nothing it may run does not ask again until it changes), and this
// worker's cordon and drain. $1 worker, $2 instance uuid, $3 lease seconds,
// $4 heartbeat too, $5 the instance id in worker.meta.
func renewStatement(on, version string) string {
	return `
WITH ` + workers.HeartbeatDurability + `,
hb AS (` + workers.HeartbeatUpdate("$1", "$5", "$4::boolean") + `),
renewed AS (
	UPDATE sensor_workload_assignment a
	SET lease_expires_at = clock_timestamp() + make_interval(secs => $3::float8), renewed_at = clock_timestamp()
	FROM sensor_workload sw JOIN sensor s ON s.id = sw.sensor LEFT JOIN runtime rt ON rt.id = s.runtime
	WHERE a.worker = $1 AND a.worker_instance = $2::uuid AND a.` + fence.Live + `
	  AND sw.id = a.workload
	  -- The full fence, as Attune's renewal: a lease this instance knows is
	  -- renewed only under the generation it knows ($11, $12); one it does
	  -- not know (a claim whose answer was lost) is adopted.
	  AND (NOT a.workload = ANY($11::bigint[])
	       OR (a.workload, a.generation) IN (SELECT * FROM unnest($11::bigint[], $12::bigint[])))
	RETURNING a.workload, a.generation, a.lease_expires_at, s.id AS sensor, s.ref, ` + on + ` AS enabled,
		` + version + ` AS version),
-- Three index-backed parts rather than one OR, which would scan every
-- assignment on every tick of every worker.
waiting_rows AS (
	SELECT a.workload, a.updated, false AS expired FROM sensor_workload_assignment a WHERE a.worker IS NULL
	UNION ALL
	SELECT a.workload, a.updated, true FROM sensor_workload_assignment a
	WHERE a.worker IS NOT NULL AND a.lease_expires_at <= clock_timestamp()
	UNION ALL
	SELECT a.workload, a.updated, false FROM sensor_workload_assignment a
	WHERE a.worker = $1 AND a.worker_instance <> $2::uuid AND $10::boolean),
-- Capped: a renewal must stay cheap when thousands of sensors wait (a
-- mass failure), or late renewals would expire more leases.
waiting AS (
	SELECT count(*) AS n, count(*) FILTER (WHERE w.expired) AS expired,
		coalesce(max(extract(epoch FROM w.updated)), 0) AS changed,
		(SELECT coalesce(max(workload), 0) FROM sensor_workload_assignment) AS top
	FROM (SELECT wr.* FROM waiting_rows wr
	      JOIN sensor_workload sw ON sw.id = wr.workload JOIN sensor s ON s.id = sw.sensor AND ` + on + `
	      LIMIT 64) w)
SELECT
	(SELECT coalesce(json_agg(renewed), '[]') FROM renewed),
	(SELECT count(*) FROM hb),
	waiting.n, waiting.expired, waiting.top, waiting.n || ':' || waiting.expired || ':' || waiting.changed,
	coalesce(w.cordoned, false), d.deadline, d.budget, coalesce(d.deadline <= now(), false),
	coalesce(d.last_handoff_at IS NULL OR d.last_handoff_at <= now() - make_interval(secs => $6::float8), false),
	-- When the next lease of a worker that has stopped renewing lapses
	-- (not renewed for more than half its length: a live worker renews
	-- at a third), among those lapsing within one interval (a short range
	-- of the lease index) and whose owner this worker watches: about
	-- LapseWakers workers watch each owner, so that not every survivor
	-- ticks at every lapse.
	(SELECT extract(epoch FROM min(a.lease_expires_at) - clock_timestamp())::float8 FROM sensor_workload_assignment a
	 WHERE a.worker IS NOT NULL AND a.lease_expires_at > clock_timestamp()
	   AND a.lease_expires_at < clock_timestamp() + make_interval(secs => $7::float8)
	   AND a.worker <> $1 AND a.renewed_at < clock_timestamp() - (a.lease_expires_at - a.renewed_at) / 2
	   AND mod(a.worker + $1, $8::bigint) < $9)
FROM waiting
LEFT JOIN worker w ON w.id = $1
LEFT JOIN worker_drain d ON d.worker = $1 AND d.finished_at IS NULL`
}

type renewedRow struct {
	Workload   int64     `json:"workload"`
	Generation int64     `json:"generation"`
	Expires    time.Time `json:"lease_expires_at"`
	Sensor     int64     `json:"sensor"`
	Ref        string    `json:"ref"`
	Enabled    bool      `json:"enabled"`
	Version    string    `json:"version"`
}

// Tick is what the sensor service loop calls once per heartbeat interval
// (and when a notification says sensors were released, or when Held.Sooner
// says so: a watched lease lapsed, a claim lost sensors to others). In steady state it
// is one statement: renew every lease (and, with Config.Heartbeat, the
// heartbeat). Then, only when needed: release disabled sensors, hand over
// sensors while draining, claim what is waiting up to this worker's fair
// share, and every BalanceEvery ticks compare its load with its peers' and
// hand over a budget of sensors when it holds two or more above the least
// loaded peer that could run them.
//
// A lease the renewal did not return is dropped at once (in Held.Dropped,
// reason "lost"): the caller must stop that sensor without waiting.
func (p *Placer) Tick(ctx context.Context) (Held, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out Held
	if p.shutdown {
		return out, errors.New("placement: Tick after ReleaseAll")
	}
	p.ticks++
	var (
		renewedJSON                 []byte
		hbRows                      int
		waiting, expired            int64
		sig                         string
		cordoned, pastDeadline, due bool
		deadline                    *time.Time
		budget                      *int32
		lapse                       *float64
	)
	knownW := make([]int64, 0, len(p.held)+len(p.pending))
	knownG := make([]int64, 0, len(p.held)+len(p.pending))
	for w, l := range p.held {
		knownW, knownG = append(knownW, w), append(knownG, l.Generation)
	}
	for w, pr := range p.pending {
		knownW, knownG = append(knownW, w), append(knownG, pr.d.Generation)
	}
	err := p.pool.QueryRow(ctx, p.sql.renew, p.cfg.WorkerID, p.instance, p.cfg.Lease.Seconds(), p.cfg.Heartbeat,
		p.cfg.InstanceID, p.cfg.Interval.Seconds()*0.9, p.cfg.Interval.Seconds(), p.watchModulus(), LapseWakers, p.cfg.AdoptOwnLeases,
		knownW, knownG).
		Scan(&renewedJSON, &hbRows, &waiting, &expired, &p.top, &sig, &cordoned, &deadline, &budget, &pastDeadline, &due, &lapse)
	out.Statements++
	if err != nil {
		// The leases stand until they expire; the caller retries next tick.
		// A sensor is dropped only when the database says so, or when its
		// lease has run out by this host's clock.
		p.dropExpiredLocally(&out)
		return p.finish(out), fmt.Errorf("renewing sensor leases: %w", err)
	}
	if lapse != nil && *lapse > 0 {
		out.NextLapse = time.Duration(*lapse * float64(time.Second))
	}
	var renewed []renewedRow
	if err := json.Unmarshal(renewedJSON, &renewed); err != nil {
		return out, fmt.Errorf("renewing sensor leases: reading the result: %w", err)
	}
	next := make(map[int64]Lease, len(renewed))
	var disabled []Lease
	stillPending := map[int64]bool{}
	for _, r := range renewed {
		if pr, ok := p.pending[r.Workload]; ok && pr.d.Generation <= r.Generation {
			stillPending[r.Workload] = true
			continue
		}
		l := Lease{Fence: fence.Fence{Workload: r.Workload, Worker: p.cfg.WorkerID, Instance: p.instance, Generation: r.Generation},
			SensorID: r.Sensor, SensorRef: r.Ref, ExpiresAt: r.Expires, Version: r.Version}
		// A generation other than the one claimed is still this instance's
		// (the renewal matched worker and instance): the supervisor bumps it
		// at every start of the sensor's process, as Attune's protocol does.
		if _, ok := p.held[r.Workload]; !ok {
			// Ours in the database but not in memory: an earlier claim whose
			// answer was lost. Adopt it: the fence is ours.
			out.Claimed = append(out.Claimed, l)
		}
		if !r.Enabled {
			disabled = append(disabled, l)
			continue
		}
		next[r.Workload] = l
	}
	for w, l := range p.held {
		if _, ok := next[w]; !ok && !slices.ContainsFunc(disabled, func(d Lease) bool { return d.Workload == w }) &&
			!slices.ContainsFunc(out.Dropped, func(d Dropped) bool { return d.Workload == w }) {
			out.Dropped = append(out.Dropped, Dropped{Lease: l, Reason: "lost"})
		}
	}
	p.held = next
	for w := range p.pending {
		if !stillPending[w] {
			delete(p.pending, w) // the lease is gone: nothing to release
		}
	}
	if p.cfg.Heartbeat && hbRows == 0 {
		return p.finish(out), fmt.Errorf("heartbeat of worker %d: %w", p.cfg.WorkerID, workers.ErrTakenOver)
	}
	if len(disabled) > 0 {
		if _, err := p.release(ctx, &out, disabled, EndReleased); err != nil {
			return p.finish(out), err
		}
	}

	draining := deadline != nil
	switch {
	case draining && pastDeadline:
		if _, err := p.release(ctx, &out, p.sortedHeld(), EndDrained); err != nil {
			return p.finish(out), err
		}
		if err := p.finishDrain(ctx, &out); err != nil {
			return p.finish(out), err
		}
	case draining && due && len(p.held) > 0:
		b := p.cfg.Budget
		if budget != nil && *budget > 0 {
			b = int(*budget)
		}
		give := p.pickToShed(b)
		n, err := p.release(ctx, &out, give, EndDrained)
		if err != nil {
			return p.finish(out), err
		}
		if _, err := p.pool.Exec(ctx, `UPDATE worker_drain SET last_handoff_at = now(), handed_over = handed_over + $2 WHERE worker = $1 AND finished_at IS NULL`, p.cfg.WorkerID, n); err != nil {
			return p.finish(out), fmt.Errorf("recording a drain handoff: %w", err)
		}
		out.Statements++
	case draining && len(p.held) == 0:
		if err := p.finishDrain(ctx, &out); err != nil {
			return p.finish(out), err
		}
	}

	balanceDue := p.ticks%p.cfg.BalanceEvery == 1 || p.cfg.BalanceEvery == 1
	// A worker below its share claims what waits at once; a worker at its
	// share too when leases expired (a dead worker's sensors: its share
	// grew), so failover does not wait for the next balance check.
	//
	// What waits changed (sensors added, enabled, released, orphaned): the
	// share is worked out anew from the fleet as it is now, so a worker
	// whose share was 0 (it started before any sensor existed) claims the
	// new sensors at once instead of at its next balance check.
	changed := waiting > 0 && sig != p.lastSig
	claimNow := waiting > 0 && (changed || p.retry) && (len(p.held) < p.target || expired > 0 || changed)
	if !cordoned && !draining && (claimNow || balanceDue) {
		// A change that is leases lapsing (a dead worker) claims from the
		// view of the last check, its lapsed share (lapsedShare) on top:
		// during a failover what waits changes at every tick of every
		// survivor, and reading every peer is the expensive statement.
		full := balanceDue || p.self == nil || changed && expired == 0
		if err := p.balance(ctx, &out, waiting > 0, expired, full); err != nil {
			return p.finish(out), err
		}
		if waiting > 0 {
			p.lastSig = sig
		}
	}
	return p.finish(out), nil
}

func (p *Placer) finish(out Held) Held {
	out.Leases = p.publish()
	return out
}

// dropExpiredLocally drops leases that have run out even by this host's
// clock when the database cannot be asked: another worker may own them by now.
func (p *Placer) dropExpiredLocally(out *Held) {
	now := time.Now()
	for w, l := range p.held {
		if !l.ExpiresAt.After(now) {
			out.Dropped = append(out.Dropped, Dropped{Lease: l, Reason: "lost"})
			delete(p.held, w)
		}
	}
}

func (p *Placer) finishDrain(ctx context.Context, out *Held) error {
	_, err := p.pool.Exec(ctx, `UPDATE worker_drain SET finished_at = now() WHERE worker = $1 AND finished_at IS NULL`, p.cfg.WorkerID)
	out.Statements++
	if err != nil {
		return fmt.Errorf("finishing the drain: %w", err)
	}
	return nil
}

// release gives up ls with reason, forgets them, and reports them dropped.
func (p *Placer) release(ctx context.Context, out *Held, ls []Lease, reason string) (int, error) {
	if len(ls) == 0 {
		return 0, nil
	}
	if p.cfg.DeferRelease && !p.shutdown {
		for _, l := range ls {
			delete(p.held, l.Workload)
			d := Dropped{Lease: l, Reason: reason}
			out.Dropped = append(out.Dropped, d)
			out.Handover = append(out.Handover, d)
			p.pending[l.Workload] = pendingRelease{d: d}
		}
		return len(ls), nil
	}
	fs := make([]fence.Fence, len(ls))
	for i, l := range ls {
		fs[i] = l.Fence
	}
	n, err := releaseFenced(ctx, p.pool, fs, reason)
	out.Statements++
	for _, l := range ls {
		// Released or not (a failed release leaves a lease that expires),
		// the sensor is no longer treated as ours.
		delete(p.held, l.Workload)
		out.Dropped = append(out.Dropped, Dropped{Lease: l, Reason: reason})
	}
	return n, err
}

// pickToShed chooses n held sensors to hand over: the most recently
// claimed ones (highest workload id among equals), so long-running ones stay.
func (p *Placer) pickToShed(n int) []Lease {
	hs := p.sortedHeld()
	slices.SortStableFunc(hs, func(a, b Lease) int { return int(b.Workload - a.Workload) })
	if n > len(hs) {
		n = len(hs)
	}
	return hs[:n]
}

// ReleaseAll gives up every lease (shutdown), so that other workers claim
// the sensors at once: the release notifies attunectl_placement. After it,
// Tick fails.
func (p *Placer) ReleaseAll(ctx context.Context) ([]Dropped, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shutdown = true
	var out Held
	_, err := p.release(ctx, &out, p.sortedHeld(), EndReleased)
	if perr := p.releasePending(ctx, func(pendingRelease) bool { return true }); err == nil {
		err = perr
	}
	p.publish()
	return out.Dropped, err
}

// ReleaseStopped releases the handed-over leases whose processes are gone:
// fences are the last fences of the runners that ended (a release names
// the generation the process ran under), and handed-over leases whose
// release failed before are tried again.
func (p *Placer) ReleaseStopped(ctx context.Context, fences []fence.Fence) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range fences {
		if pr, ok := p.pending[f.Workload]; ok && f.Worker == pr.d.Worker && f.Instance == pr.d.Instance {
			if f.Generation > pr.d.Generation {
				pr.d.Generation = f.Generation
			}
			pr.stopped = true
			p.pending[f.Workload] = pr
		}
	}
	return p.releasePending(ctx, func(pr pendingRelease) bool { return pr.stopped })
}

// releasePending releases the pending leases that which selects, by
// reason; those released are forgotten, the others stay to be tried again.
func (p *Placer) releasePending(ctx context.Context, which func(pendingRelease) bool) error {
	byReason := map[string][]fence.Fence{}
	for _, pr := range p.pending {
		if which(pr) {
			byReason[pr.d.Reason] = append(byReason[pr.d.Reason], pr.d.Fence)
		}
	}
	var first error
	for reason, fs := range byReason {
		if _, err := releaseFenced(ctx, p.pool, fs, reason); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		for _, f := range fs {
			delete(p.pending, f.Workload)
		}
	}
	return first
}

// ErrNoWorker: the worker row is gone.
var ErrNoWorker = errors.New("placement: the worker row does not exist")

// self reads this worker as eligibility sees it, and its peers' load.
type selfView struct {
	WorkerInfo
	Candidates  int // enabled sensors whose runtime and selector fit
	Peers       int // live, uncordoned sensor workers sharing one of those runtimes (including this one)
	MinPeerHeld int // least load among the other peers (-1: none)
	TotalHeld   int // leases held by all peers
}

// balanceStatement reads, in one statement, this worker's capabilities, liveness
// and cordon, how many enabled sensors it could run by runtime and
// selector, and the load of its peers (live, uncordoned sensor workers that
// advertise one of the same sensors' runtimes).
func balanceStatement(on string, fits func(labels string) string) string {
	return `
WITH me AS (
	SELECT id, worker_role::text AS role, capabilities, coalesce(cordoned, false) AS cordoned,
		status = 'active' AND NOT ` + workers.StaleSQL("worker") + ` AS live,
		CASE WHEN jsonb_typeof(capabilities->'runtimes') = 'array' THEN capabilities->'runtimes' ELSE '[]' END AS rts,
		CASE WHEN jsonb_typeof(capabilities->'labels') = 'object' THEN capabilities->'labels' ELSE '{}' END AS labels
	FROM worker WHERE id = $1),
names AS (SELECT DISTINCT lower(x) AS n FROM me, jsonb_array_elements_text(me.rts) x),
rts AS (
	SELECT r.id, array_append(array(SELECT lower(al) FROM unnest(r.aliases) al), lower(r.name)) AS names
	FROM runtime r
	WHERE lower(r.name) IN (SELECT n FROM names)
	   OR EXISTS (SELECT 1 FROM unnest(r.aliases) al WHERE lower(al) IN (SELECT n FROM names))),
cand AS (
	SELECT s.id, s.runtime FROM sensor s, me
	WHERE ` + on + ` AND s.runtime IN (SELECT id FROM rts) AND ` + fits("me.labels") + `),
cand_names AS (SELECT DISTINCT unnest(rts.names) AS n FROM rts WHERE rts.id IN (SELECT runtime FROM cand)),
peers AS (
	SELECT p.id, (SELECT count(*) FROM sensor_workload_assignment a
	              WHERE a.worker = p.id AND a.` + fence.Live + `) AS held
	FROM worker p
	WHERE p.worker_role::text IN ('sensor', 'hybrid') AND p.status = 'active' AND NOT coalesce(p.cordoned, false)
	  AND NOT ` + workers.StaleSQL("p") + `
	  AND NOT EXISTS (SELECT 1 FROM worker_drain d WHERE d.worker = p.id AND d.finished_at IS NULL)
	  AND jsonb_typeof(p.capabilities->'runtimes') = 'array'
	  AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(p.capabilities->'runtimes') x WHERE lower(x) IN (SELECT n FROM cand_names)))
SELECT me.role, me.capabilities, me.cordoned, me.live,
	(SELECT count(*) FROM cand),
	(SELECT count(*) FROM peers WHERE id <> $1) + 1,
	coalesce((SELECT min(held) FROM peers WHERE id <> $1), -1),
	coalesce((SELECT sum(held) FROM peers WHERE id <> $1), 0)
FROM me`
}

func (p *Placer) readSelf(ctx context.Context) (selfView, error) {
	var (
		v    selfView
		caps []byte
		role *string
	)
	err := p.pool.QueryRow(ctx, p.sql.balance, p.cfg.WorkerID).Scan(&role, &caps, &v.Cordoned, &v.Live,
		&v.Candidates, &v.Peers, &v.MinPeerHeld, &v.TotalHeld)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, ErrNoWorker
	}
	if err != nil {
		return v, fmt.Errorf("reading this worker's placement view: %w", err)
	}
	info := WorkerInfoFromCapabilities(caps)
	info.ID, info.Live, info.Cordoned = p.cfg.WorkerID, v.Live, v.Cordoned
	if role != nil {
		info.Role = *role
	}
	info.Held = len(p.held)
	v.WorkerInfo = info
	v.TotalHeld += info.Held
	return v, nil
}

// balance claims up to the fair share and hands over what is above it.
//
// Fair share: target = ceil(candidates / peers), capped by capacity. A
// worker claims freely while it is below target, unless it handed sensors
// over in the last three ticks (it would take back what it gave away while
// the worker that should get them is still on its way); otherwise it
// claims only sensors that have waited more than two intervals (so a
// sensor is never left unowned because of balance).
// It hands over (reason rebalanced, at most Budget per balance check) when
// it holds at least two more than the least loaded peer, down to
// floor(total / peers) — so 3 identical workers with 9 sensors hold 3 each,
// and a 4th joining ends at 3/2/2/2.
//
// Between balance checks (full false) a claim reuses the view of the last
// check instead of reading every peer again: after a mass failure hundreds
// of survivors claim at once, and that read is the expensive statement.
// Failover (expired leases) then lets a worker at its share take its part
// of the lapsed leases: their number over the other peers of that view.
func (p *Placer) balance(ctx context.Context, out *Held, waiting bool, expired int64, full bool) error {
	if !full {
		v := *p.self
		held := len(p.held)
		want := 0
		if held < p.target && !(p.lastShed > 0 && p.ticks-p.lastShed <= 3*p.cfg.BalanceEvery) {
			want = p.target - held
		}
		// The view is from before the lapse: one of its peers is likely
		// the dead worker.
		want = max(want, lapsedShare(expired, v.Peers-1))
		capacity := v.Capacity
		if capacity <= 0 {
			capacity = DefaultCapacity
		}
		want = min(want, capacity-held)
		if want <= 0 || !waiting {
			return nil
		}
		return p.claim(ctx, out, v.WorkerInfo, want, false)
	}
	v, err := p.readSelf(ctx)
	out.Statements++
	if err != nil {
		return err
	}
	p.self = &v
	if !v.Live || v.Cordoned || (v.Role != workers.RoleSensor && v.Role != workers.RoleHybrid) {
		return nil
	}
	capacity := v.Capacity
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	held := len(p.held)
	target := min((v.Candidates+v.Peers-1)/max(v.Peers, 1), capacity)
	p.target = target
	coolingDown := p.lastShed > 0 && p.ticks-p.lastShed <= 3*p.cfg.BalanceEvery

	// Hand over, but only when nothing is waiting: while sensors wait, the
	// less loaded peers take those instead.
	if !waiting && v.MinPeerHeld >= 0 && held >= v.MinPeerHeld+2 {
		floor := v.TotalHeld / v.Peers
		n := min(p.cfg.Budget, held-max(floor, v.MinPeerHeld+1))
		if n > 0 {
			p.lastShed = p.ticks
			_, err := p.release(ctx, out, p.pickToShed(n), EndRebalanced)
			return err
		}
	}
	if !waiting {
		return nil
	}
	want := 0
	agedOnly := false
	switch {
	case held < target && !coolingDown:
		want = target - held
	case held < capacity:
		// Above its share, a worker takes one sensor per tick, and only
		// one that has waited: enough to leave nothing unowned that only
		// it can run, without piling up what others will take.
		want, agedOnly = 1, true
	}
	if share := lapsedShare(expired, v.Peers); share > want { // the dead worker is stale by now
		want, agedOnly = share, false
	}
	want = min(want, capacity-held)
	if want <= 0 {
		return nil
	}
	return p.claim(ctx, out, v.WorkerInfo, want, agedOnly)
}

// lapsedShare is how many of the expired leases a worker claims in one
// tick, whatever its share: their number over the live workers that share
// them (this one included), or over LapseWakers when there are more (that
// many wake at a lapse), so that survivors take a dead worker's sensors in
// a tick or two rather than one each per tick. expired is at most 64 (the
// renewal counts no further), so a tick takes at most 64.
func lapsedShare(expired int64, sharers int) int {
	if expired <= 0 {
		return 0
	}
	n := int64(min(max(sharers, 1), LapseWakers))
	return int((expired + n - 1) / n)
}

// candidatesStatement lists claimable workloads this worker may run by runtime
// and selector (the version constraint and tolerations are checked in Go).
// Each part walks an index in order from its own starting point ($5, random
// per tick) and stops after $3 matches, so that workers claiming at once
// rarely want the same rows and no part scans every assignment: unowned
// rows from $5 up, then below $5, then expired leases (in an order of
// their own) and leases of an older instance of this worker. $1 worker, $2 instance, $4 only rows
// waiting more than $6 seconds.
func candidatesStatement(on string, fits func(labels string) string, more string) string {
	return `
WITH me AS (
	SELECT CASE WHEN jsonb_typeof(capabilities->'runtimes') = 'array' THEN capabilities->'runtimes' ELSE '[]' END AS rts,
		CASE WHEN jsonb_typeof(capabilities->'labels') = 'object' THEN capabilities->'labels' ELSE '{}' END AS labels
	FROM worker WHERE id = $1),
names AS (SELECT DISTINCT lower(x) AS n FROM me, jsonb_array_elements_text(me.rts) x),
rts AS MATERIALIZED (
	SELECT r.id, r.name, r.aliases FROM runtime r
	WHERE lower(r.name) IN (SELECT n FROM names)
	   OR EXISTS (SELECT 1 FROM unnest(r.aliases) al WHERE lower(al) IN (SELECT n FROM names))),
picked AS (
	(SELECT a.workload FROM sensor_workload_assignment a
	 JOIN sensor_workload sw ON sw.id = a.workload
	 JOIN sensor s ON s.id = sw.sensor AND ` + on + ` AND s.runtime IN (SELECT id FROM rts)
	  AND ` + fits("(SELECT labels FROM me)") + `
	 WHERE a.worker IS NULL AND a.workload >= $5
	   AND (NOT $4::boolean OR a.updated <= clock_timestamp() - make_interval(secs => $6::float8))
	 ORDER BY a.workload LIMIT $3)
	UNION ALL
	(SELECT a.workload FROM sensor_workload_assignment a
	 JOIN sensor_workload sw ON sw.id = a.workload
	 JOIN sensor s ON s.id = sw.sensor AND ` + on + ` AND s.runtime IN (SELECT id FROM rts)
	  AND ` + fits("(SELECT labels FROM me)") + `
	 WHERE a.worker IS NULL AND a.workload < $5
	   AND (NOT $4::boolean OR a.updated <= clock_timestamp() - make_interval(secs => $6::float8))
	 ORDER BY a.workload LIMIT $3)
	UNION ALL
	(SELECT a.workload FROM sensor_workload_assignment a
	 JOIN sensor_workload sw ON sw.id = a.workload
	 JOIN sensor s ON s.id = sw.sensor AND ` + on + ` AND s.runtime IN (SELECT id FROM rts)
	  AND ` + fits("(SELECT labels FROM me)") + `
	 WHERE a.worker IS NOT NULL AND a.lease_expires_at <= clock_timestamp()
	   AND (NOT $4::boolean OR a.lease_expires_at <= clock_timestamp() - make_interval(secs => $6::float8))
	 -- Expired leases are few (a failure's worth): a random order per
	 -- worker keeps hundreds of survivors from queueing on the same rows.
	 ORDER BY (a.workload * 2654435761 + $5) % 4294967291 LIMIT $3)
	UNION ALL
	(SELECT a.workload FROM sensor_workload_assignment a
	 JOIN sensor_workload sw ON sw.id = a.workload
	 JOIN sensor s ON s.id = sw.sensor AND ` + on + ` AND s.runtime IN (SELECT id FROM rts)
	  AND ` + fits("(SELECT labels FROM me)") + `
	 WHERE a.worker = $1 AND a.worker_instance <> $2::uuid AND $7::boolean
	 LIMIT $3))
SELECT p.workload, s.id, s.ref, rts.name, rts.aliases, coalesce(s.runtime_version_constraint, ''),
	CASE WHEN jsonb_typeof(s.worker_tolerations) = 'array' THEN s.worker_tolerations ELSE '[]' END,
	` + more + `
FROM (SELECT workload FROM picked LIMIT $3) p
JOIN sensor_workload sw ON sw.id = p.workload
JOIN sensor s ON s.id = sw.sensor
JOIN rts ON rts.id = s.runtime`
}

// claimSQL takes the chosen workloads: each row is locked and re-checked
// (unowned, expired, or held by an older instance of this worker), rows
// another claimer holds locked are skipped. The claim keeps the
// generation: it is bumped once per process start (the supervisor's
// BeginRun), as Attune's sensor service does; the new owner is fenced by
// its worker and instance. (generation is named in the SET so that the
// ledger's trigger sees every claim, a re-claim by the same instance too.)
const claimSQL = `
WITH pick AS (
	SELECT a.workload FROM sensor_workload_assignment a
	WHERE a.workload = ANY($3::bigint[])
	  AND (a.worker IS NULL OR a.lease_expires_at <= clock_timestamp() OR (a.worker = $1 AND a.worker_instance <> $2::uuid AND $6::boolean))
	ORDER BY a.workload
	LIMIT $5
	FOR UPDATE OF a SKIP LOCKED)
UPDATE sensor_workload_assignment a
SET worker = $1, worker_instance = $2::uuid, generation = a.generation,
	lease_expires_at = clock_timestamp() + make_interval(secs => $4::float8),
	assigned_at = clock_timestamp(), renewed_at = clock_timestamp(), updated = now()
FROM pick, sensor_workload sw JOIN sensor s ON s.id = sw.sensor
WHERE a.workload = pick.workload AND sw.id = a.workload
RETURNING a.workload, a.generation, a.lease_expires_at, s.id, s.ref`

func (p *Placer) claim(ctx context.Context, out *Held, me WorkerInfo, want int, agedOnly bool) error {
	p.seed = p.seed*6364136223846793005 + 1442695040888963407
	start := int64(0)
	if p.top > 0 {
		start = int64(p.seed>>1) % (p.top + 1)
	}
	rows, err := p.pool.Query(ctx, p.sql.candidates, p.cfg.WorkerID, p.instance, want*3+8, agedOnly,
		start, (2 * p.cfg.Interval).Seconds(), p.cfg.AdoptOwnLeases)
	out.Statements++
	if err != nil {
		return fmt.Errorf("finding sensors to claim: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var (
			workload, sensor        int64
			ref, rtName, constraint string
			aliases                 []string
			tolerationsRaw, moreRaw []byte
		)
		if err := rows.Scan(&workload, &sensor, &ref, &rtName, &aliases, &constraint, &tolerationsRaw, &moreRaw); err != nil {
			rows.Close()
			return fmt.Errorf("finding sensors to claim: %w", err)
		}
		req := Requirement{RuntimeName: rtName, RuntimeAliases: aliases, Constraint: constraint}
		_ = json.Unmarshal(tolerationsRaw, &req.Tolerations)
		_ = json.Unmarshal(moreRaw, &req.MoreTolerations)
		me.Held = 0 // capacity is accounted by want
		if Eligible(me, req) == ReasonOK {
			ids = append(ids, workload)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("finding sensors to claim: %w", err)
	}
	p.retry = false
	if len(ids) == 0 {
		return nil
	}
	rows, err = p.pool.Query(ctx, claimSQL, p.cfg.WorkerID, p.instance, ids, p.cfg.Lease.Seconds(), want, p.cfg.AdoptOwnLeases)
	out.Statements++
	if err != nil {
		return fmt.Errorf("claiming sensors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l := Lease{Fence: fence.Fence{Worker: p.cfg.WorkerID, Instance: p.instance}}
		if err := rows.Scan(&l.Workload, &l.Generation, &l.ExpiresAt, &l.SensorID, &l.SensorRef); err != nil {
			return fmt.Errorf("claiming sensors: %w", err)
		}
		p.held[l.Workload] = l
		out.Claimed = append(out.Claimed, l)
		want--
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("claiming sensors: %w", err)
	}
	p.retry = want > 0
	out.Again = p.retry
	return nil
}

// BeginRun runs begin — the supervisor's start of a process, which bumps
// the generation of a lease this instance holds — while no tick renews,
// and records the generation it returns: a renewal names the generation
// the database has (the full fence, as Attune's renewal does), and a
// fenced release of a drain, a rebalance or the shutdown names it too.
func (p *Placer) BeginRun(begin func() (fence.Fence, error)) (fence.Fence, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := begin()
	if err != nil {
		return f, err
	}
	if l, ok := p.held[f.Workload]; ok && l.Worker == f.Worker && l.Instance == f.Instance && f.Generation > l.Generation {
		l.Generation = f.Generation
		p.held[f.Workload] = l
	}
	return f, nil
}
