// Package netguard keeps attunectl's HTTP endpoints (the sensors' event
// endpoint, the worker's /metrics, /healthz and /readyz) answering when
// somebody opens connections and leaves them idle: the number of open
// connections is bounded, so they cannot exhaust the worker's descriptors,
// and a new connection is never made to wait behind idle ones — at the
// bound, the connection idle the longest (open without a request, or kept
// alive between requests) is closed to make room. Only connections in the
// middle of a request keep their place; a new one is refused (closed at
// once) only when every slot is serving a request.
package netguard

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Listener wraps a listener: Accept never blocks on the bound (it makes
// room instead), and Server's ConnState tells it which connections are
// serving a request. Use Server (or Track on an existing server).
type Listener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]*entry

	// Shed counts the connections closed to make room or refused.
	Shed atomic.Int64
}

type entry struct {
	active bool
	since  time.Time
}

// Listen wraps ln so that at most max connections are open at once.
func Listen(ln net.Listener, max int) *Listener {
	return &Listener{Listener: ln, max: max, conns: map[net.Conn]*entry{}}
}

// Accept accepts the next connection; at the bound it first closes the
// connection idle the longest, or refuses the new one when all are busy.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		var victim *conn
		if len(l.conns) >= l.max {
			var at time.Time
			for oc, e := range l.conns {
				if !e.active && (victim == nil || e.since.Before(at)) {
					victim, at = oc.(*conn), e.since
				}
			}
			if victim == nil {
				l.mu.Unlock()
				l.Shed.Add(1)
				c.Close() // every slot is serving a request
				continue
			}
			delete(l.conns, victim)
			l.Shed.Add(1)
		}
		gc := &conn{Conn: c, l: l}
		l.conns[gc] = &entry{since: time.Now()}
		l.mu.Unlock()
		if victim != nil {
			victim.Conn.Close() // its server goroutine sees the close and ends
		}
		return gc, nil
	}
}

// Open is the number of connections open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// state records what http.Server says of a connection.
func (l *Listener) state(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.conns[c]
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		e.active = true
	case http.StateIdle:
		e.active, e.since = false, time.Now()
	case http.StateHijacked, http.StateClosed:
		delete(l.conns, c)
	}
}

// Track makes srv report its connections' states to l (chaining any
// ConnState srv has).
func (l *Listener) Track(srv *http.Server) {
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		l.state(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
}

type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return err
}
