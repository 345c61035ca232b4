package workers

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// A stream's statement is written for the server's cost per row as much
// as for the client's: a listing of a million workers runs every output
// function a million times. So its columns are the stored values where
// possible — no coalesce (a NULL costs the server nothing to send and
// decodes to the zero value), no ::text casts (enums are read in text
// format, which is their label), no extract(epoch …), which computes in
// numeric: the grace is sent as an interval and the silence computed here
// from the heartbeat and the statement's now(), to the same value (see
// silenceOf, epochSeconds). The row scanner then reads each column's bytes
// itself (binary where the type has a cheap binary form, text otherwise)
// instead of pgx's Scan, and falls back to pgx's decoding for any column
// whose type or format is not the one expected (an older schema's types, a
// pooler's text results, infinite timestamps).

// dest is where a column of a stream's statement goes in a Row.
type dest uint8

const (
	dName dest = iota
	dRole
	dState
	dHost
	dHeartbeat
	dGrace
	dID
	dType
	dStatus
	dPort
	dCreated
	dUpdated
	dCaps
	dRuntimes
	dInterval
	dInstance
	dMeta
	dCordoned
	dReason
	dBy
	dCordonedAt
	dHeld
)

// streamCol is one column of a stream's statement.
type streamCol struct {
	sql  string
	dest dest
}

// binaryFormat reports whether the column is read in binary: timestamps,
// intervals, integers and booleans, whose binary forms are cheaper than
// their text on both ends. Every other column is read as text: strings,
// enums (their label) and JSON (the text PostgreSQL prints).
func (d dest) binaryFormat() bool {
	switch d {
	case dHeartbeat, dGrace, dID, dPort, dCreated, dUpdated, dCordoned, dCordonedAt, dHeld:
		return true
	}
	return false
}

// streamColumns are the columns a stream with fields reads. grace is the
// interval the worker is judged by (the override or its own), stale the
// condition that makes an active worker stale.
func streamColumns(f Fields, stale, grace string) []streamCol {
	cols := []streamCol{{"name", dName}}
	add := func(sql string, d dest) { cols = append(cols, streamCol{sql, d}) }
	if f&FieldState != 0 {
		add("worker_role", dRole)
		add("CASE WHEN status = 'active' AND "+stale+" THEN 'stale' ELSE coalesce(status::text, 'unknown') END", dState)
		add("host", dHost)
		add("last_heartbeat", dHeartbeat)
		add(grace, dGrace)
	}
	if f&FieldDetail != 0 {
		add("id", dID)
		add("worker_type", dType)
		add("status", dStatus)
		add("port", dPort)
		add("created", dCreated)
		add("updated", dUpdated)
	}
	// Capabilities.UnmarshalJSON reads a list of strings into Runtimes and
	// a number into HeartbeatInterval; anything else is left out.
	switch {
	case f&FieldCapabilities != 0:
		add("capabilities", dCaps)
	default:
		if f&FieldRuntimes != 0 {
			add("capabilities->'runtimes'", dRuntimes)
		}
		if f&FieldLate != 0 {
			add("capabilities->'heartbeat_interval'", dInterval)
		}
	}
	if f&FieldInstance != 0 {
		add("CASE WHEN jsonb_typeof(meta->'instance_id') = 'string' THEN meta->>'instance_id' END", dInstance)
	}
	if f&(FieldMeta|FieldMetaJSON) != 0 {
		add("meta", dMeta)
	}
	if f&FieldPlacement != 0 {
		add("worker.cordoned", dCordoned)
		add("worker.cordon_reason", dReason)
		add("worker.cordoned_by_name", dBy)
		add("worker.cordoned_at", dCordonedAt)
		add("held.n", dHeld)
	}
	return cols
}

// selectList is cols as the select list of a statement.
func selectList(cols []streamCol) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.sql
	}
	return strings.Join(s, ",\n\t")
}

// resultFormats are the formats to ask the server for cols in.
func resultFormats(cols []streamCol) pgx.QueryResultFormats {
	f := make(pgx.QueryResultFormats, len(cols))
	for i, c := range cols {
		if c.dest.binaryFormat() {
			f[i] = pgx.BinaryFormatCode
		}
	}
	return f
}

// rowScanner decodes the columns of streamColumns into a Row.
type rowScanner struct {
	f      Fields
	cols   []streamCol
	fields []pgconn.FieldDescription
	m      *pgtype.Map
	// at is the statement's now(), every row's Row.At.
	at time.Time
	// words interns the values a fleet repeats on every row (role, state,
	// status, type, runtimes, versions): one string each, not one per row.
	words map[string]string
}

func newRowScanner(f Fields, cols []streamCol, m *pgtype.Map, at time.Time) *rowScanner {
	return &rowScanner{f: f, cols: cols, m: m, at: at, words: map[string]string{}}
}

// word returns b as a string, shared with every equal value before it;
// the set stops growing at 4096 distinct values (a fleet has a handful).
func (s *rowScanner) word(b []byte) string {
	if w, ok := s.words[string(b)]; ok {
		return w
	}
	w := string(b)
	if len(s.words) < 4096 {
		s.words[w] = w
	}
	return w
}

// scan decodes the current row of rows into *r, which it overwrites: a
// batch's rows are decoded in place, never built and copied. A stream
// with FieldsAll yields the workers List returns.
func (s *rowScanner) scan(rows pgx.Rows, r *Row) error {
	if s.fields == nil {
		s.fields = rows.FieldDescriptions()
		if len(s.fields) != len(s.cols) {
			return fmt.Errorf("reading a worker row: %d columns, want %d", len(s.fields), len(s.cols))
		}
	}
	*r = Row{At: s.at}
	w := &r.Worker
	var silence bool
	for i, v := range rows.RawValues() {
		fd := &s.fields[i]
		var err error
		switch s.cols[i].dest {
		case dName:
			w.Name, err = s.text(fd, v)
		case dRole:
			w.Role, err = s.wordOf(fd, v)
		case dState:
			w.State, err = s.wordOf(fd, v)
		case dHost:
			w.Host, err = s.text(fd, v)
		case dHeartbeat:
			w.LastHeartbeat, err = s.timestamp(fd, v)
			silence = w.LastHeartbeat != nil
		case dGrace:
			var secs *float64
			if secs, err = s.interval(fd, v); secs != nil {
				r.Grace = time.Duration(*secs * float64(time.Second))
			}
		case dID:
			var id *int64
			if id, err = s.integer(fd, v); id != nil {
				w.ID = *id
			}
		case dType:
			w.Type, err = s.wordOf(fd, v)
		case dStatus:
			w.Status, err = s.wordOf(fd, v)
		case dPort:
			var p *int64
			if p, err = s.integer(fd, v); p != nil {
				port := int(*p)
				w.Port = &port
			}
		case dCreated, dUpdated:
			var t *time.Time
			if t, err = s.timestamp(fd, v); t != nil {
				if s.cols[i].dest == dCreated {
					w.Created = *t
				} else {
					w.Updated = *t
				}
			}
		case dCaps:
			if len(v) > 0 {
				if c, ok := decodeCapabilitiesOf(v, s.word); ok {
					w.Capabilities = c
				} else {
					_ = json.Unmarshal(v, &w.Capabilities)
				}
			}
		case dRuntimes:
			if len(v) > 0 {
				rt, ok := decodeStringListOf(v, s.word)
				if !ok && json.Unmarshal(v, &rt) != nil {
					rt = nil
				}
				w.Capabilities.Runtimes = rt
			}
		case dInterval:
			w.Capabilities.HeartbeatInterval = jsonNumber(v)
		case dInstance:
			r.InstanceID, err = s.text(fd, v)
		case dMeta:
			if v != nil && s.f&FieldMeta != 0 {
				_ = json.Unmarshal(v, &w.Meta)
			}
			if v != nil && s.f&FieldMetaJSON != 0 {
				r.MetaJSON = append([]byte(nil), v...) // v is the connection's buffer
			}
		case dCordoned:
			var b *bool
			if b, err = s.boolean(fd, v); b != nil {
				r.Placement.Cordoned = *b
			}
		case dReason:
			r.Placement.Reason, err = s.text(fd, v)
		case dBy:
			r.Placement.By, err = s.text(fd, v)
		case dCordonedAt:
			r.Placement.At, err = s.timestamp(fd, v)
		case dHeld:
			var n *int64
			if n, err = s.integer(fd, v); n != nil {
				r.Placement.Held = int(*n)
			}
		}
		if err != nil {
			return fmt.Errorf("reading a worker row: column %s: %w", fd.Name, err)
		}
	}
	if silence {
		w.Silence = silenceOf(s.at.UnixMicro(), w.LastHeartbeat.UnixMicro())
	}
	return nil
}

// silenceOf is now - heartbeat as List reads it, extract(epoch FROM now()
// - last_heartbeat)::float8: the exact difference in seconds rounded once
// to a float64 (which dividing the microseconds does, below 2^53 of them),
// then made a Duration the same way.
func silenceOf(nowMicros, hbMicros int64) time.Duration {
	secs := float64(nowMicros-hbMicros) / 1e6
	return time.Duration(secs * float64(time.Second))
}

// text is a column read as text; NULL is "".
func (s *rowScanner) text(fd *pgconn.FieldDescription, v []byte) (string, error) {
	if v == nil {
		return "", nil
	}
	if fd.Format == pgx.TextFormatCode {
		return string(v), nil
	}
	var t pgtype.Text
	err := s.m.Scan(fd.DataTypeOID, fd.Format, v, &t)
	return t.String, err
}

// wordOf is text for the columns whose values repeat from row to row.
func (s *rowScanner) wordOf(fd *pgconn.FieldDescription, v []byte) (string, error) {
	if v != nil && fd.Format == pgx.TextFormatCode {
		return s.word(v), nil
	}
	return s.text(fd, v)
}

// Microseconds between PostgreSQL's epoch (2000-01-01) and Unix's.
const pgEpochMicros = 946_684_800_000_000

// timestamp is a timestamptz column; NULL is nil. Infinite values go to
// pgx, which says it cannot make them a time.
func (s *rowScanner) timestamp(fd *pgconn.FieldDescription, v []byte) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	if fd.Format == pgx.BinaryFormatCode && fd.DataTypeOID == pgtype.TimestamptzOID && len(v) == 8 {
		us := int64(binary.BigEndian.Uint64(v))
		if us != math.MaxInt64 && us != math.MinInt64 {
			t := time.UnixMicro(us + pgEpochMicros).UTC()
			return &t, nil
		}
	}
	var t time.Time
	if err := s.m.Scan(fd.DataTypeOID, fd.Format, v, &t); err != nil {
		return nil, err
	}
	t = t.UTC()
	return &t, nil
}

// interval is an interval column as extract(epoch FROM …)::float8 gives
// it; NULL is nil.
func (s *rowScanner) interval(fd *pgconn.FieldDescription, v []byte) (*float64, error) {
	if v == nil {
		return nil, nil
	}
	var iv pgtype.Interval
	if fd.Format == pgx.BinaryFormatCode && fd.DataTypeOID == pgtype.IntervalOID && len(v) == 16 {
		iv = pgtype.Interval{Microseconds: int64(binary.BigEndian.Uint64(v)), Days: int32(binary.BigEndian.Uint32(v[8:])),
			Months: int32(binary.BigEndian.Uint32(v[12:])), Valid: true}
	} else if err := s.m.Scan(fd.DataTypeOID, fd.Format, v, &iv); err != nil {
		return nil, err
	}
	secs := epochSeconds(iv)
	return &secs, nil
}

// epochSeconds is extract(epoch FROM iv)::float8 as PostgreSQL 15
// computes it: a year is 365.25 days, a month 30, a day 86,400 seconds;
// the sum in microseconds is exact and rounded once to a float64.
func epochSeconds(iv pgtype.Interval) float64 {
	const quarterDay = 21_600 // seconds
	m := int64(iv.Months)     // |m| < 2^31: secs stays below 2^53
	secs := (1461*(m/12) + 120*(m%12) + 4*int64(iv.Days)) * quarterDay
	if secs > -1<<32 && secs < 1<<32 && iv.Microseconds > -1<<60 && iv.Microseconds < 1<<60 {
		if us := secs*1_000_000 + iv.Microseconds; us > -1<<53 && us < 1<<53 {
			return float64(us) / 1e6 // both exact as float64: one rounding
		}
	}
	us := new(big.Int).Mul(big.NewInt(secs), big.NewInt(1_000_000))
	us.Add(us, big.NewInt(iv.Microseconds))
	f, _ := new(big.Rat).SetFrac(us, big.NewInt(1_000_000)).Float64()
	return f
}

// integer is an integer column; NULL is nil.
func (s *rowScanner) integer(fd *pgconn.FieldDescription, v []byte) (*int64, error) {
	if v == nil {
		return nil, nil
	}
	var n int64
	binaryOf := func(oid uint32, size int) bool {
		return fd.Format == pgx.BinaryFormatCode && fd.DataTypeOID == oid && len(v) == size
	}
	switch {
	case binaryOf(pgtype.Int8OID, 8):
		n = int64(binary.BigEndian.Uint64(v))
	case binaryOf(pgtype.Int4OID, 4):
		n = int64(int32(binary.BigEndian.Uint32(v)))
	case binaryOf(pgtype.Int2OID, 2):
		n = int64(int16(binary.BigEndian.Uint16(v)))
	default:
		if err := s.m.Scan(fd.DataTypeOID, fd.Format, v, &n); err != nil {
			return nil, err
		}
	}
	return &n, nil
}

// boolean is a boolean column; NULL is nil.
func (s *rowScanner) boolean(fd *pgconn.FieldDescription, v []byte) (*bool, error) {
	if v == nil {
		return nil, nil
	}
	var b bool
	if fd.Format == pgx.BinaryFormatCode && fd.DataTypeOID == pgtype.BoolOID && len(v) == 1 {
		b = v[0] != 0
	} else if err := s.m.Scan(fd.DataTypeOID, fd.Format, v, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// jsonNumber is a JSON value as the heartbeat interval List reads: the
// number when it is one (CASE WHEN jsonb_typeof(…) = 'number' THEN
// (…)::float8), else 0. A number too large for a float64 is 0 too, where
// the cast failed the whole statement.
func jsonNumber(v []byte) float64 {
	if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
		return 0
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0
	}
	return f
}
