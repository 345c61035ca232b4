package database

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL error codes attunectl explains.
const (
	codeInvalidPassword    = "28P01"
	codeInvalidAuthSpec    = "28000"
	codeInvalidCatalogName = "3D000"
	codeTooManyConnections = "53300"
	codeCannotConnectNow   = "57P03"
	codeQueryCanceled      = "57014"
	codeLockNotAvailable   = "55P03"
)

// explainConnect turns a connection failure into a message that says what
// failed and what to do. Passwords never appear in it.
func explainConnect(err error, timeout time.Duration) error {
	err = RedactError(err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeInvalidPassword, codeInvalidAuthSpec:
			return WithMessage(fmt.Sprintf("connecting to database: authentication failed: %s (check the user and password in the database URL, or the server's pg_hba.conf)", pgErr.Message), err)
		case codeInvalidCatalogName:
			return WithMessage(fmt.Sprintf("connecting to database: %s (create it with `createdb`, or fix the database name in the URL)", pgErr.Message), err)
		}
		if st, ok := serverStates[pgErr.Code]; ok {
			return WithMessage(fmt.Sprintf("connecting to database: %s: %s (%s)", st.what, pgErr.Message, st.todo), err)
		}
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return fmt.Errorf("connecting to database: no answer within %s: %w (is the server up and reachable? check the host and port, or raise database.connect_timeout)", timeout, err)
	case errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such file or directory"):
		return fmt.Errorf("connecting to database: %w (is the server running? check the host and port in the URL, or unset it to use the embedded database)", err)
	}
	return fmt.Errorf("connecting to database: %w (check --database-url or ATTUNE__DATABASE__URL)", err)
}

// serverStates are the server conditions whose errors attunectl explains
// the same way at connect time and for a running statement: what happened,
// and what to do.
var serverStates = map[string]struct{ what, todo string }{
	codeTooManyConnections: {"the server has no free connections", "retry later, or raise max_connections on the server"},
	codeCannotConnectNow:   {"the server is starting up or shutting down", "retry in a moment"},
	codeQueryCanceled:      {"the statement ran past its timeout", "a table may be locked or the server overloaded: " + timeoutTodo},
}

// timeoutTodo is what to do about a statement that ran into
// database.statement_timeout, said the same way everywhere.
const timeoutTodo = "retry later, find the blocking session in pg_stat_activity, or raise database.statement_timeout"

// ExplainTimeout is the error of a statement that ran into
// database.statement_timeout (after, 0 when unknown) while doing what on
// table: instead of PostgreSQL's bare "canceling statement due to
// statement timeout", it says what usually causes it, who holds the table
// (holders, when known: "locked exclusively by pid 42: psql, …") and what
// to do. The cause stays in the chain.
func ExplainTimeout(what, table string, after time.Duration, holders string, err error) error {
	timedOut := "timed out"
	if after > 0 {
		timedOut = "timed out after " + after.String()
	}
	msg := fmt.Sprintf("%s: %s: the %s table is locked or the server is overloaded", what, timedOut, table)
	if holders != "" {
		msg += " (" + holders + ")"
	}
	return WithMessage(msg+"; "+timeoutTodo, err)
}

// Explain adds what to do to an error of a running statement whose cause
// attunectl knows (no free connection, a server starting or stopping, a
// statement timeout); other errors are returned as they are. The sensor
// worker logs its failed heartbeats through it.
func Explain(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	st, ok := serverStates[pgErr.Code]
	if !ok {
		return err
	}
	return WithMessage(err.Error()+" ("+st.what+": "+st.todo+")", err)
}

// MessageError is an error whose text replaces its cause's — a redacted
// message, or one explained for the operator — while its chain keeps the
// cause, so that errors.Is/As and IsTransient still see it. It is
// attunectl's one type for a message over a cause.
type MessageError struct {
	Msg string
	Err error
}

func (e *MessageError) Error() string { return e.Msg }
func (e *MessageError) Unwrap() error { return e.Err }

// WithMessage returns err with its text replaced by msg.
func WithMessage(msg string, err error) error { return &MessageError{Msg: msg, Err: err} }

// IsTransient reports whether err is worth retrying: the server went away,
// is restarting, has no free connection, or a statement timed out.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeTooManyConnections, codeCannotConnectNow, codeQueryCanceled, codeLockNotAvailable, "57P01", "57P02", "08000", "08003", "08006", "25006":
			return true
		}
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr) || errors.Is(err, context.DeadlineExceeded)
}

// IsTimeout reports whether err is a statement or context timeout.
func IsTimeout(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeQueryCanceled {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}
