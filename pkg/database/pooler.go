package database

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Behind a transaction pooler (PgBouncer with pool_mode = transaction) a
// client's consecutive transactions run on different server connections, so
// nothing set for the session survives: not the startup parameters (a stock
// PgBouncer refuses jit, search_path and statement_timeout outright, with
// "unsupported startup parameter"), not a SET, not a prepared statement, not
// a session advisory lock.
//
// attunectl's SQL uses unqualified table names everywhere, so that the same
// statements work in any schema. Rather than qualify every statement in every
// package, the pool's connections apply the settings to every transaction
// themselves: poolerConn sits between pgx and the network and puts
//
//	SELECT set_config('search_path', …, true), set_config('statement_timeout', …, true), set_config('jit', 'off', true)
//
// in front of each transaction — as a prefix of a simple-protocol query, or
// as a Parse/Bind/Execute before the first extended-protocol message after a
// Sync, but not inside an explicit transaction, whose first statement set
// them already (inTransaction) — and swallows the replies to it, so pgx
// never sees them. set_config
// with is_local = true lasts until the end of the transaction (an implicit
// one included), which is exactly how long the pooler lends the server
// connection. Statements run with QueryExecModeExec: unnamed
// statements only, so no server-side prepared statement can collide between
// clients, and parameter types still come from the server.
//
// A direct connection does none of this: it keeps the startup parameters and
// pgx's statement cache.

// poolerSettings renders the settings as one SELECT of set_config calls.
func poolerSettings(schema string, opts Options) string {
	var b strings.Builder
	b.WriteString("SELECT pg_catalog.set_config('search_path', ")
	b.WriteString(quoteLiteral(pgx.Identifier{schema}.Sanitize() + ", public"))
	b.WriteString(", true), pg_catalog.set_config('jit', 'off', true)")
	if opts.StatementTimeout > 0 {
		b.WriteString(", pg_catalog.set_config('statement_timeout', ")
		b.WriteString(quoteLiteral(strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)))
		b.WriteString(", true)")
	}
	return b.String()
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// noPrefix matches simple-protocol statements that must not get the settings
// in front: those that end a transaction (in a failed transaction the
// settings would fail and take the ROLLBACK down with them) and those that
// refuse to run inside a transaction block.
var noPrefix = regexp.MustCompile(`(?is)^\s*(commit|end|rollback|abort|prepare\s+transaction|release|vacuum|alter\s+system|(create|drop)\s+database|(create|drop|reindex)\s+(unique\s+)?index\s+concurrently|reindex\s+\w+\s+concurrently|cluster|checkpoint)\b`)

// expectation is the replies still to swallow for one injected statement.
type expectation struct{ types []byte }

// poolerConn rewrites the frontend messages pgx writes and filters the backend
// messages it reads, as described above. pgconn reads in a background
// goroutine while it writes, hence the mutex.
type poolerConn struct {
	net.Conn
	prefixQ  []byte // "SELECT set_config(…);\n" for simple queries
	extended []byte // Parse/Bind/Execute of the same SELECT
	mu       sync.Mutex
	pending  []expectation
	txStatus byte // of the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' failed
	inUnit   bool // extended-protocol messages written since the last Sync
	// unanswered counts the queries and Syncs written whose ReadyForQuery
	// has not been read: while it is 0, txStatus is the connection's state.
	unanswered int
	started    bool // the startup message (untyped) has been written
	wpartial   []byte
	rbuf       []byte // raw bytes read, not yet a whole message
	out        []byte // filtered bytes ready for pgx
	readBuf    []byte
}

func newPoolerConn(c net.Conn, settings string) *poolerConn {
	pc := &poolerConn{Conn: c, txStatus: 'I', readBuf: make([]byte, 32*1024)}
	pc.prefixQ = []byte(settings + ";\n")
	var err error
	buf, _ := (&pgproto3.Parse{Query: settings}).Encode(nil)
	buf, _ = (&pgproto3.Bind{}).Encode(buf)
	buf, err = (&pgproto3.Execute{}).Encode(buf)
	if err != nil {
		panic(err) // fixed messages: cannot fail
	}
	pc.extended = buf
	return pc
}

// Write rewrites whole messages; a partial one is kept until its rest comes.
func (pc *poolerConn) Write(b []byte) (int, error) {
	data := b
	if len(pc.wpartial) > 0 {
		data = append(pc.wpartial, b...)
		pc.wpartial = nil
	}
	var out []byte
	for len(data) > 0 {
		if !pc.started {
			if len(data) < 4 {
				break
			}
			n := int(binary.BigEndian.Uint32(data))
			if len(data) < n {
				break
			}
			out = append(out, data[:n]...)
			data = data[n:]
			pc.started = true
			continue
		}
		if len(data) < 5 {
			break
		}
		n := 1 + int(binary.BigEndian.Uint32(data[1:5]))
		if len(data) < n {
			break
		}
		out = pc.rewrite(out, data[:n])
		data = data[n:]
	}
	if len(data) > 0 {
		pc.wpartial = append([]byte(nil), data...)
	}
	if len(out) == 0 {
		return len(b), nil
	}
	n, err := pc.Conn.Write(out)
	if err != nil {
		if n > 0 {
			return 1, err // something went out: not safe to retry
		}
		return 0, err
	}
	return len(b), nil
}

func (pc *poolerConn) rewrite(out, msg []byte) []byte {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	switch msg[0] {
	case 'Q':
		query := msg[5 : len(msg)-1] // NUL-terminated
		plain := pc.txStatus == 'E' || pc.inTransaction() || noPrefix.Match(query)
		pc.unanswered++
		if plain {
			return append(out, msg...)
		}
		body := len(pc.prefixQ) + len(query) + 1
		out = append(out, 'Q')
		out = binary.BigEndian.AppendUint32(out, uint32(4+body))
		out = append(out, pc.prefixQ...)
		out = append(out, query...)
		out = append(out, 0)
		pc.pending = append(pc.pending, expectation{[]byte{'T', 'D', 'C'}})
		return out
	case 'P', 'B', 'D', 'E', 'C', 'F':
		if !pc.inUnit {
			pc.inUnit = true
			if pc.txStatus != 'E' && !pc.inTransaction() {
				out = append(out, pc.extended...)
				pc.pending = append(pc.pending, expectation{[]byte{'1', '2', 'D', 'C'}})
			}
		}
	case 'S':
		pc.inUnit = false
		pc.unanswered++
	}
	return append(out, msg...)
}

// inTransaction reports whether the connection is known to be inside a
// transaction block, whose first statement applied the settings for all
// that follow: a statement there needs no settings in front, and must not
// get them — they would undo its own SET LOCAL (a stream's
// statement_timeout = 0) and replace the unnamed statement that pgx
// described in one unit and binds in the next.
func (pc *poolerConn) inTransaction() bool {
	return pc.txStatus == 'T' && pc.unanswered == 0
}

// Read hands pgx the server's messages minus the replies to the injected
// statements.
func (pc *poolerConn) Read(p []byte) (int, error) {
	for len(pc.out) == 0 {
		n, err := pc.Conn.Read(pc.readBuf)
		if n > 0 {
			pc.rbuf = append(pc.rbuf, pc.readBuf[:n]...)
			pc.filter()
		}
		if err != nil && len(pc.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, pc.out)
	pc.out = pc.out[n:]
	if len(pc.out) == 0 {
		pc.out = nil
	}
	return n, nil
}

func (pc *poolerConn) filter() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	data := pc.rbuf
	for len(data) >= 5 {
		n := 1 + int(binary.BigEndian.Uint32(data[1:5]))
		if len(data) < n {
			break
		}
		msg := data[:n]
		data = data[n:]
		if pc.swallow(msg[0]) {
			continue
		}
		if msg[0] == 'Z' && len(msg) >= 6 {
			pc.txStatus = msg[5]
			if pc.unanswered > 0 {
				pc.unanswered--
			}
		}
		pc.out = append(pc.out, msg...)
	}
	pc.rbuf = append(pc.rbuf[:0], data...)
}

// swallow reports whether a backend message of type t is a reply to an
// injected statement. Asynchronous messages (notices, parameter status,
// notifications) are never swallowed; an error ends the expectation (the
// server skips the rest) and reaches pgx, which would have met the same error.
func (pc *poolerConn) swallow(t byte) bool {
	switch t {
	case 'N', 'S', 'A':
		return false
	}
	for len(pc.pending) > 0 {
		e := &pc.pending[0]
		if len(e.types) == 0 {
			pc.pending = pc.pending[1:]
			continue
		}
		if t == e.types[0] {
			e.types = e.types[1:]
			if len(e.types) == 0 {
				pc.pending = pc.pending[1:]
			}
			return true
		}
		// An error or anything unexpected: the injected statement did not
		// run to completion; stop swallowing for it.
		pc.pending = pc.pending[1:]
		return false
	}
	return false
}

// isUnsupportedStartupParameter reports whether err is a pooler refusing a
// startup parameter, as a stock PgBouncer does for search_path, jit and
// statement_timeout.
func isUnsupportedStartupParameter(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.Contains(pgErr.Message, "unsupported startup parameter")
	}
	return err != nil && strings.Contains(err.Error(), "unsupported startup parameter")
}

// usePooler rewrites cfg for a transaction pooler: no startup parameters
// beyond application_name, unnamed statements only, and the settings applied
// to every transaction by poolerConn.
func usePooler(cfg *pgxpool.Config, schema string, opts Options) {
	rp := cfg.ConnConfig.RuntimeParams
	delete(rp, "search_path")
	delete(rp, "jit")
	delete(rp, "statement_timeout")
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	settings := poolerSettings(schema, opts)
	wrap := func(ctx context.Context, _ *pgconn.Config, c net.Conn) (net.Conn, error) {
		return newPoolerConn(c, settings), nil
	}
	cfg.ConnConfig.AfterNetConnect = wrap
}
