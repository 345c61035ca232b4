package events

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/supervise"
)

// BatchWriter records events like Writer, but gathers the events that
// arrive while a batch commits into the next one: one statement and one
// commit (one WAL flush) for up to MaxBatch events of any number of
// sensors, each still checked against its own fence. A sensor process
// waits for the commit of the batch its event is in, so an accepted event
// is as durable as the commit setting says.
type BatchWriter struct {
	pool  *pgxpool.Pool
	async bool
	reqs  chan *batchReq
	stop  chan struct{}
	wg    sync.WaitGroup
}

// MaxBatch bounds the events of one batch.
const MaxBatch = 256

type batchReq struct {
	ev   supervise.Event
	id   int64
	err  error
	done chan struct{}
}

// NewBatchWriter starts a writer with workers concurrent batches (each on a
// connection of the pool). With async, batches commit with
// synchronous_commit off: much faster on a slow disk, but a server crash
// can lose the last fraction of a second of accepted events (never an
// event written without its fence).
func NewBatchWriter(db *database.DB, workers int, async bool) *BatchWriter {
	pool := db.Pool
	if workers <= 0 {
		workers = 2
	}
	w := &BatchWriter{pool: pool, async: async, reqs: make(chan *batchReq, MaxBatch*workers), stop: make(chan struct{})}
	for range workers {
		w.wg.Add(1)
		go w.loop()
	}
	return w
}

// Close stops the writer once the queued events are written.
func (w *BatchWriter) Close() {
	close(w.stop)
	w.wg.Wait()
}

// WriteEvent queues ev and waits for its batch to commit.
func (w *BatchWriter) WriteEvent(ctx context.Context, ev supervise.Event) (int64, error) {
	r := &batchReq{ev: ev, done: make(chan struct{})}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-w.stop:
		return 0, errors.New("the event writer is stopping")
	}
	select {
	case <-r.done:
		return r.id, r.err
	case <-ctx.Done():
		// The batch may still commit the event; the caller is gone.
		return 0, ctx.Err()
	}
}

func (w *BatchWriter) loop() {
	defer w.wg.Done()
	for {
		var first *batchReq
		select {
		case first = <-w.reqs:
		case <-w.stop:
			// Drain what is queued.
			for {
				select {
				case r := <-w.reqs:
					w.write([]*batchReq{r})
				default:
					return
				}
			}
		}
		batch := []*batchReq{first}
	fill:
		for len(batch) < MaxBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.write(batch)
	}
}

// insertSQL checks the fences and inserts a batch of events in one
// statement, which is its own transaction: one round trip per batch
// instead of BEGIN, the statement and COMMIT (and SET LOCAL for async
// commit). Each event's assignment row is locked FOR SHARE while the
// insert commits, so a takeover (which updates that row) either waits for
// the insert or makes it find no fence. The durability CTE sets
// synchronous_commit for this transaction only, as the heartbeat does: off
// when $11 (async), else unchanged. It is the one event insert: Writer
// sends a batch of one.
var insertSQL = `
WITH durability AS MATERIALIZED (
    SELECT set_config('synchronous_commit',
        CASE WHEN $11::boolean THEN 'off' ELSE current_setting('synchronous_commit') END, true)
), req AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[],
                         $7::jsonb[], $8::jsonb[], $9::bigint[], $10::text[], $12::bigint[], $13::text[])
        WITH ORDINALITY AS r(workload, worker, instance, generation, trig, trigger_ref, config, payload, sensor, sensor_ref, rule, rule_ref, ord)
), fenced AS (
    SELECT nextval(pg_get_serial_sequence('event', 'id')) AS id, req.*
    FROM durability, req JOIN sensor_workload_assignment a
      ON ` + fence.Predicate("a", "req.workload", "req.worker", "req.instance", "req.generation") + `
    FOR SHARE OF a
), ins AS (
    INSERT INTO event (id, trigger, trigger_ref, config, payload, source, source_ref, source_workload, source_generation, rule, rule_ref)
    SELECT id, trig, trigger_ref, config, payload, sensor, sensor_ref, workload, generation, rule, rule_ref FROM fenced
    RETURNING id
)
SELECT f.ord, f.id, pg_notify('` + Channel + `', f.id::text) FROM fenced f JOIN ins ON ins.id = f.id`

func (w *BatchWriter) write(batch []*batchReq) {
	evs := make([]supervise.Event, len(batch))
	for i, r := range batch {
		evs[i] = r.ev
	}
	ids, err := insertEvents(context.Background(), w.pool, evs, w.async)
	for i, r := range batch {
		r.id, r.err = ids[i], err
		if err == nil && ids[i] == 0 {
			r.err = staleEvent(r.ev)
		}
		close(r.done)
	}
}

// insertEvents writes evs with insertSQL and returns the id of each, 0
// for an event whose fence is stale (nothing written for it). err is the
// statement's own failure: then none was written.
func insertEvents(ctx context.Context, pool *pgxpool.Pool, evs []supervise.Event, async bool) ([]int64, error) {
	n := len(evs)
	workload, worker, gen := make([]int64, n), make([]int64, n), make([]int64, n)
	inst, tref, sref := make([]string, n), make([]string, n), make([]string, n)
	trig, sensor, rule := make([]*int64, n), make([]*int64, n), make([]*int64, n)
	ruleRef := make([]*string, n)
	cfg, payload := make([]*string, n), make([]string, n)
	for i, e := range evs {
		workload[i], worker[i], inst[i], gen[i] = e.Fence.Workload, e.Fence.Worker, e.Fence.Instance, e.Fence.Generation
		if e.TriggerID != 0 {
			trig[i] = &e.TriggerID
		}
		if e.SensorID != 0 {
			sensor[i] = &e.SensorID
		}
		if e.RuleID != 0 {
			rule[i], ruleRef[i] = &e.RuleID, &e.RuleRef
		}
		if len(e.Config) > 0 && string(e.Config) != "null" {
			c := string(e.Config)
			cfg[i] = &c
		}
		tref[i], sref[i], payload[i] = e.TriggerRef, e.SensorRef, string(e.Payload)
		if payload[i] == "" {
			payload[i] = "null"
		}
	}
	ids := make([]int64, n)
	// Outside BEGIN, the statement commits before the server reports it
	// ready: rows.Err after Close includes a failed commit.
	rows, err := pool.Query(ctx, insertSQL, workload, worker, inst, gen, trig, tref, cfg, payload, sensor, sref, async, rule, ruleRef)
	if err != nil {
		return ids, insertError(evs, err)
	}
	for rows.Next() {
		var ord, id int64
		var notified string
		if err := rows.Scan(&ord, &id, &notified); err != nil {
			rows.Close()
			return make([]int64, n), insertError(evs, err)
		}
		ids[ord-1] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return make([]int64, n), insertError(evs, err)
	}
	return ids, nil
}

func insertError(evs []supervise.Event, err error) error {
	if len(evs) == 1 {
		return fmt.Errorf("inserting an event for %s: %w", evs[0].TriggerRef, err)
	}
	return fmt.Errorf("inserting a batch of %d events: %w", len(evs), err)
}

func staleEvent(ev supervise.Event) error {
	return fmt.Errorf("event for %s from %s: %w", ev.TriggerRef, ev.Fence, fence.ErrStale)
}

var _ supervise.EventWriter = (*BatchWriter)(nil)
