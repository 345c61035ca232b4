package workers

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Fields select the parts of each worker that Stream reads and decodes.
// The name is always read. A printer asks for what its format shows and no
// more: the name printer reads names only, the table printer never decodes
// capabilities or meta whole.
type Fields uint

const (
	// FieldState reads Role, the derived State, Host, LastHeartbeat,
	// Silence and Row.Grace: what the table shows.
	FieldState Fields = 1 << iota
	// FieldRuntimes reads Capabilities.Runtimes (what the table shows),
	// without the rest of the capabilities.
	FieldRuntimes
	// FieldCapabilities reads and decodes the whole capabilities object
	// (once), which includes FieldRuntimes.
	FieldCapabilities
	// FieldInstance reads meta.instance_id into Row.InstanceID, without
	// decoding meta.
	FieldInstance
	// FieldMeta reads and decodes the whole meta object into Worker.Meta.
	FieldMeta
	// FieldMetaJSON reads meta as its JSON text into Row.MetaJSON, without
	// decoding it (-o json writes it again from the text).
	FieldMetaJSON
	// FieldPlacement reads the worker's cordon and how many sensors it
	// holds under an unexpired lease into Row.Placement, joined into the
	// stream's statement, so a listing never holds a map of every worker.
	FieldPlacement
	// FieldDetail reads ID, Type, the stored Status, Port, Created and
	// Updated, which -o wide, json and yaml show and the table does not.
	FieldDetail
	// FieldLate reads Capabilities.HeartbeatInterval, without the rest of
	// the capabilities: what Row.Late needs, which the table shows only as
	// a colour (a number the server must print for every row, so a table
	// without colour does not ask for it).
	FieldLate

	fieldsKnown = FieldLate<<1 - 1
)

// The field sets of attunectl's formats.
const (
	// FieldsName is -o name: names only.
	FieldsName Fields = 0
	// FieldsTable is the table of worker list and worker stale.
	FieldsTable = FieldState | FieldRuntimes | FieldLate
	// FieldsWide is -o wide: the table plus the details, runtime versions
	// and the instance.
	FieldsWide = FieldState | FieldDetail | FieldCapabilities | FieldInstance
	// FieldsAll is everything List returns.
	FieldsAll = FieldState | FieldDetail | FieldCapabilities | FieldInstance | FieldMeta
	// FieldsJSON is -o json and -o yaml: everything, with meta as text.
	FieldsJSON = FieldState | FieldDetail | FieldCapabilities | FieldInstance | FieldMetaJSON
)

// DefaultStreamBatchSize is how many rows make one batch of Stream:
// enough that handing batches from the reader to the printer costs little,
// few enough that a batch decoded in memory stays well under a megabyte or
// two, and that producing it is a small fraction of any statement timeout.
const DefaultStreamBatchSize = 1000

// MaxStreamBatchSize bounds StreamOptions.BatchSize.
const MaxStreamBatchSize = 100_000

// StreamOptions say what Stream reads and how much at a time.
type StreamOptions struct {
	// Fields to read; FieldsName (0) reads names only.
	Fields Fields
	// BatchSize is the rows per batch (DefaultStreamBatchSize when 0).
	BatchSize int
}

func (so StreamOptions) batchSize() int {
	if so.BatchSize <= 0 {
		return DefaultStreamBatchSize
	}
	return so.BatchSize
}

// Row is one worker of a stream, with what a printer needs beside it.
type Row struct {
	Worker
	// At is the database's now() for the whole stream: every row's State
	// and Silence were derived against it (as Listing.At).
	At time.Time
	// Grace is the grace the database judged this worker by: the
	// --older-than override, or the worker's own (FieldState).
	Grace time.Duration
	// InstanceID is meta.instance_id when it is a string (FieldInstance).
	InstanceID string
	// MetaJSON is the worker's meta as the database prints it
	// (FieldMetaJSON); nil when meta is NULL.
	MetaJSON []byte
	// Placement is the worker's cordon and the sensors it holds
	// (FieldPlacement).
	Placement Placement
}

// Placement is what the placement of sensors knows about a worker: its
// cordon (Attune's columns on worker) and how many sensors it holds under
// an unexpired lease, as placement.WorkerStates reads them.
type Placement struct {
	Cordoned bool
	Reason   string
	By       string
	At       *time.Time
	Held     int
}

// Late reports whether the worker is active and has missed at least one
// heartbeat but is still within its grace (as Listing.Late; needs
// FieldState and FieldLate or FieldCapabilities).
func (r Row) Late() bool {
	return r.State == StatusActive && r.LastHeartbeat != nil && r.Silence > IntervalOf(r.Worker)
}

// StreamResult says what a stream delivered.
type StreamResult struct {
	// At is the database's now() for the stream, also when it had no rows.
	At      time.Time
	Rows    int64
	Batches int
}

// Stream runs the statement List runs for opts and calls fn with each
// worker, in List's order, as the rows arrive: memory holds two batches of
// so.BatchSize rows at most, whatever the number of rows.
//
// The statement runs once, as psql would run it (so the server may plan it
// in parallel, which it never does for a cursor), in a read-only
// transaction of its own connection: every row comes from one snapshot and
// is judged against one now(), exactly as List's. A reader decodes the rows
// into batches while fn works through the previous one; when fn falls
// behind by two batches the reader stops reading and the server waits on
// the connection, holding nothing in memory on either side.
//
// database.statement_timeout bounds the server's work for each batch,
// never the time fn takes: the stream turns the server's timeout off for
// its statement and keeps it itself, on the time it waits for each batch
// (batchWatchdog), so a pager waiting for a key is not a "timeout". When it
// runs out, the server is asked to cancel the statement, which fails with
// SQLSTATE 57014 as a statement timeout does.
//
// An operator who leaves a paged listing open holds a snapshot and a
// running statement, as psql with FETCH_COUNT would.
//
// When fn returns an error, the stream stops, asks the server to cancel
// the rest of the statement, and Stream returns that error as it is.
// Database errors are a *StreamError that says which step failed and why,
// in the operator's terms.
func Stream(ctx context.Context, db *database.DB, opts ListOptions, so StreamOptions, fn func(Row) error) (StreamResult, error) {
	if err := opts.validate(); err != nil {
		return StreamResult{}, err
	}
	if err := so.validate(); err != nil {
		return StreamResult{}, err
	}
	p := newListParts(opts, schemaOf(db).graceColumn)
	return streamQuery(ctx, db, func(f Fields) (string, []any, []streamCol) {
		return p.streamStatement(f)
	}, so, fn)
}

// streamStatement is the statement of a stream of fields for the list p
// describes, with its arguments and columns.
func (p listParts) streamStatement(f Fields) (string, []any, []streamCol) {
	cols := streamColumns(f, p.stale, p.grace)
	q, args := p.finish("SELECT " + selectList(cols) + "\nFROM " + streamFrom(f) + p.tail)
	return q, args, cols
}

// Rows is Stream as an iterator: for row, err := range Rows(…). A non-nil
// error ends the sequence; breaking out of the loop ends the statement.
// The commands use Stream with a callback; Rows is the iterator form the
// tests of pkg/workers use.
func Rows(ctx context.Context, db *database.DB, opts ListOptions, so StreamOptions) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		errStop := errors.New("stop")
		_, err := Stream(ctx, db, opts, so, func(r Row) error {
			if !yield(r, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(Row{}, err)
		}
	}
}

// StreamPrunePreview streams exactly the workers Prune would change if it
// ran now, as PrunePreview lists them: the dry run of a big prune.
func StreamPrunePreview(ctx context.Context, db *database.DB, o PruneOptions, so StreamOptions, fn func(Row) error) (StreamResult, error) {
	if err := o.Validate(); err != nil {
		return StreamResult{}, err
	}
	if err := so.validate(); err != nil {
		return StreamResult{}, err
	}
	var a sqlArgs
	where, stale, grace := pruneWhere(o, &a, schemaOf(db).graceColumn)
	return streamQuery(ctx, db, func(f Fields) (string, []any, []streamCol) {
		cols := streamColumns(f, stale, grace)
		return "SELECT " + selectList(cols) + "\nFROM " + streamFrom(f) + "\nWHERE " + where + "\nORDER BY name", a, cols
	}, so, fn)
}

func (so StreamOptions) validate() error {
	if so.BatchSize < 0 || so.BatchSize > MaxStreamBatchSize {
		return fmt.Errorf("stream batch size %d: must be between 1 and %d", so.BatchSize, MaxStreamBatchSize)
	}
	if so.Fields&^fieldsKnown != 0 {
		return fmt.Errorf("stream fields %#x: unknown field bits", uint(so.Fields))
	}
	return nil
}

// StreamQuery returns the statement Stream runs on a
// schema migrated by attunectl: List's conditions and order, with the
// columns of fields only. The benchmark runs the same text through psql.
func StreamQuery(opts ListOptions, fields Fields) (string, []any) {
	q, a, _ := newListParts(opts, true).streamStatement(fields)
	return q, a
}

// streamFrom is the FROM of a stream's statement. FieldPlacement joins the
// live leases counted per worker once (a hash join on a small aggregate),
// not a subquery per row; the derived table exposes only worker and n, so
// the unqualified columns of the conditions still name worker's.
func streamFrom(f Fields) string {
	if f&FieldPlacement == 0 {
		return "worker"
	}
	return placementFrom
}

// placementFrom is what FieldPlacement adds to the FROM; on a database not
// migrated to placement (Attune's tables before `migrate up`: no
// assignment table or cordon columns, as learned at connect) the stream
// leaves FieldPlacement out: nobody cordoned, nothing held.
const placementFrom = `worker LEFT JOIN (SELECT worker, count(*) AS n FROM sensor_workload_assignment
		WHERE worker IS NOT NULL AND ` + fence.Live + ` GROUP BY worker) held ON held.worker = worker.id`

// batch is one batch of decoded rows, or the error that ended the stream.
type batch struct {
	rows []Row
	err  error
}

// streamQuery runs the statement build makes for the fields the schema
// has (FieldPlacement only where placement is migrated) and streams its rows.
func streamQuery(ctx context.Context, db *database.DB, build func(Fields) (string, []any, []streamCol), so StreamOptions, fn func(Row) error) (res StreamResult, err error) {
	size := so.batchSize()
	if !schemaOf(db).placement {
		so.Fields &^= FieldPlacement
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return res, &StreamError{Step: "connecting", Err: err}
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return res, &StreamError{Step: "starting the read", Err: err}
	}
	defer func() {
		// ctx may be cancelled: end the transaction regardless, briefly.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := tx.Rollback(rctx); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			conn.Conn().PgConn().Close(rctx) // do not return a connection in an unknown state
		}
	}()
	// One statement reads the transaction's clock and the session's limits.
	var idleLimit, timeoutSecs float64
	if err := tx.QueryRow(ctx, "SELECT now()"+
		", extract(epoch FROM current_setting('idle_in_transaction_session_timeout')::interval)::float8"+
		", extract(epoch FROM current_setting('statement_timeout')::interval)::float8").
		Scan(&res.At, &idleLimit, &timeoutSecs); err != nil {
		return res, &StreamError{Step: "starting the read", Err: err}
	}
	res.At = res.At.UTC()
	q, args, cols := build(so.Fields)
	// The columns come in the formats the row scanner reads fastest; a
	// pooler's connection (statements not prepared) describes the
	// statement first, in the same transaction, so that it can ask for them.
	qargs := append([]any{resultFormats(cols)}, args...)
	if m := conn.Conn().Config().DefaultQueryExecMode; m == pgx.QueryExecModeExec || m == pgx.QueryExecModeSimpleProtocol {
		qargs = append([]any{pgx.QueryExecModeDescribeExec}, qargs...)
	}
	// The server's statement_timeout would count the time the server
	// waits for a slow reader (a pager) to take the rows it sends; the
	// stream keeps the same limit itself, on the server's work for each
	// batch only (see batchWatchdog).
	timeout := time.Duration(timeoutSecs * float64(time.Second))
	if timeout > 0 {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return res, &StreamError{Step: "starting the read", Err: err}
		}
	}

	// The reader decodes batch n+1 while fn consumes batch n. free
	// recycles the row slices, so the stream holds two batches at most;
	// while both wait for fn, the reader stops reading and the server
	// waits on the connection, with nothing held in memory.
	full := make(chan batch, 1)
	free := make(chan []Row, 2)
	free <- make([]Row, 0, size)
	free <- make([]Row, 0, size)
	quit := make(chan struct{})
	done := make(chan struct{})
	qctx, qcancel := context.WithCancel(ctx)
	defer qcancel()
	pgConn := conn.Conn().PgConn()
	wd := newBatchWatchdog(timeout, pgConn, qcancel)
	go func() {
		defer close(done)
		defer close(full)
		defer wd.stop()
		n := 1
		// stop ends the statement early (the consumer stopped reading):
		// the server is asked to cancel it rather than to send every
		// remaining row for rows.Close to read and drop.
		stop := func(rows pgx.Rows) {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = pgConn.CancelRequest(cctx)
			qcancel()
			rows.Close()
		}
		send := func(b batch) bool {
			select {
			case full <- b:
				return true
			case <-quit:
				return false
			}
		}
		fail := func(err error, got int64) batch {
			if wd.fired.Load() && !database.IsTimeout(err) {
				err = fmt.Errorf("%w (the server did not answer the request to cancel the statement)", context.DeadlineExceeded)
			}
			se := &StreamError{Step: "reading batch " + fmt.Sprint(n), Batch: n, BatchSize: size, Err: err,
				IdleLimit: time.Duration(idleLimit * float64(time.Second))}
			if got == 0 {
				se.Step, se.Batch = "running the query", 0
				if database.IsTimeout(err) {
					se.locks = lockHolders(ctx, db.Pool)
				}
			}
			return batch{err: se}
		}
		buf := <-free
		wd.arm()
		rows, err := tx.Query(qctx, q, qargs...)
		if err != nil {
			wd.pause()
			send(fail(err, 0))
			return
		}
		s := newRowScanner(so.Fields, cols, conn.Conn().TypeMap(), res.At)
		var got int64
		for rows.Next() {
			buf = append(buf, Row{})
			if err := s.scan(rows, &buf[len(buf)-1]); err != nil {
				wd.pause()
				rows.Close()
				send(fail(err, got))
				return
			}
			got++
			if len(buf) < size {
				continue
			}
			wd.pause()
			if !send(batch{rows: buf}) {
				stop(rows)
				return
			}
			n++
			select {
			case buf = <-free:
			case <-quit:
				stop(rows)
				return
			}
			buf = buf[:0]
			wd.arm()
		}
		wd.pause()
		b := batch{rows: buf}
		if err := rows.Err(); err != nil {
			b = fail(err, got)
		}
		send(b)
	}()
	defer func() {
		close(quit)
		<-done // the reader no longer uses tx
	}()
	for b := range full {
		if b.err != nil {
			var se *StreamError
			if errors.As(b.err, &se) {
				se.Delivered = res.Rows
			}
			return res, b.err
		}
		if len(b.rows) > 0 {
			res.Batches++
		}
		for i := range b.rows {
			if err := fn(b.rows[i]); err != nil {
				return res, err
			}
			res.Rows++
			b.rows[i] = Row{} // let the batch's maps go
		}
		free <- b.rows
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// batchWatchdog is the statement timeout of a stream, kept by the client
// on the time the server takes to produce each batch: it runs while the
// reader waits for rows and is paused while the consumer holds both
// batches. When it runs out, the server is asked to cancel the statement
// (which then fails with SQLSTATE 57014, as a statement timeout does);
// should the server not answer within cancelGrace, the statement's
// context is cancelled and the connection dropped.
type batchWatchdog struct {
	limit   time.Duration
	timer   *time.Timer
	fired   atomic.Bool
	stopped atomic.Bool
}

const cancelGrace = 5 * time.Second

func newBatchWatchdog(limit time.Duration, pgConn *pgconn.PgConn, hardStop func()) *batchWatchdog {
	wd := &batchWatchdog{limit: limit}
	if limit <= 0 {
		return wd
	}
	wd.timer = time.AfterFunc(time.Hour, func() {
		if wd.stopped.Load() {
			return
		}
		wd.fired.Store(true)
		hard := time.AfterFunc(cancelGrace, hardStop)
		cctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
		defer cancel()
		if pgConn.CancelRequest(cctx) != nil {
			hard.Stop()
			hardStop()
		}
	})
	wd.timer.Stop()
	return wd
}

func (wd *batchWatchdog) arm() {
	if wd.timer != nil {
		wd.timer.Reset(wd.limit)
	}
}

func (wd *batchWatchdog) pause() {
	if wd.timer != nil {
		wd.timer.Stop()
	}
}

func (wd *batchWatchdog) stop() {
	wd.stopped.Store(true)
	wd.pause()
}

// StreamError is a database error of a stream, with the step that failed.
// Its message says what happened in the operator's terms: a statement
// timeout before the first row is a wait (for a lock on the worker
// table, when someone holds one), a statement timeout on a batch is the
// server taking too long to produce that batch — the time the output took
// to be read or printed never counts — and a connection the server ended
// for idling in a transaction is a consumer that read too slowly.
type StreamError struct {
	Step      string // "running the query", "reading batch 3", …
	Batch     int    // 1-based; 0 before the first row arrived
	BatchSize int
	Delivered int64 // rows handed to the consumer before the error
	Err       error
	// Idle is how long the session sat idle in its transaction, waiting
	// for the consumer, before the failure; IdleLimit is the server's
	// idle_in_transaction_session_timeout for the session (0: none). While
	// the statement runs the session is never idle: Stream leaves Idle 0.
	Idle, IdleLimit time.Duration
	locks           string // who holds a lock that blocks reading the worker table
}

func (e *StreamError) Unwrap() error { return e.Err }

// ReadTooSlowly reports whether the server ended the stream's session
// because it idled in its transaction (idle_in_transaction_session_timeout)
// while the consumer was still working through the rows it had. The
// server says so (25P03) only to a client that is reading; a client that
// learns it by a closed connection counts when it idled for at least that
// timeout.
func (e *StreamError) ReadTooSlowly() bool {
	var pgErr *pgconn.PgError
	if errors.As(e.Err, &pgErr) {
		return pgErr.Code == "25P03"
	}
	lost := !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded)
	return lost && e.IdleLimit > 0 && e.Idle >= e.IdleLimit
}

func (e *StreamError) Error() string {
	var pgErr *pgconn.PgError
	code := ""
	if errors.As(e.Err, &pgErr) {
		code = pgErr.Code
	}
	switch {
	case code == "57014" && e.Batch == 0:
		msg := "streaming workers: " + e.Step + ": the statement timeout ran out before the server could start the query"
		if e.locks != "" {
			return msg + ": the worker table is locked by " + e.locks + " (wait for it to finish, or end that session)"
		}
		return msg + " (no lock on the worker table was found: the server is overloaded; retry, or raise database.statement_timeout)"
	case code == "57014":
		return fmt.Sprintf("streaming workers: %s: the server took longer than the statement timeout to produce %d rows (after %d were delivered); "+
			"the time spent printing does not count, so the server is overloaded or the query scans far more rows than it returns: "+
			"narrow the filters, or raise database.statement_timeout", e.Step, e.BatchSize, e.Delivered)
	case e.ReadTooSlowly():
		return fmt.Sprintf("streaming workers: %s: the server closed the connection because the output was read too slowly "+
			"(idle_in_transaction_session_timeout; %d rows were delivered): write the output to a file, or raise that setting for this role", e.Step, e.Delivered)
	}
	return fmt.Sprintf("streaming workers: %s: %v", e.Step, e.Err)
}

// lockHolders describes the sessions that hold or wait for a lock on the
// worker table that a read must wait for (ACCESS EXCLUSIVE), for messages;
// "" when there are none or they cannot be read.
func lockHolders(ctx context.Context, pool *pgxpool.Pool) string {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	rows, err := pool.Query(lctx, `
		SELECT format('pid %s (%s, %s for %s: %s)', l.pid, l.mode, coalesce(a.state, '?'),
			coalesce(date_trunc('second', now() - a.xact_start)::text, '?'), left(coalesce(a.query, ''), 60))
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.relation = to_regclass('worker') AND l.granted AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
		ORDER BY l.pid LIMIT 3`)
	if err != nil {
		return ""
	}
	holders, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return ""
	}
	return strings.Join(holders, ", ")
}
