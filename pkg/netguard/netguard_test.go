package netguard

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// At the bound, the connection idle the longest is closed to make room; a
// connection serving a request keeps its place, and a new one is refused
// only when every slot serves a request.
func TestListenerMakesRoomFromTheIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := Listen(ln, 2)
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	})}
	g.Track(srv)
	go func() { _ = srv.Serve(g) }()
	defer srv.Close()
	defer close(release)
	addr := ln.Addr().String()

	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// A request that stays in flight: its connection is active.
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	// A third connection: the idle first one makes room.
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("a request at the bound: %v", err)
	}
	resp.Body.Close()
	_ = first.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err == nil {
		t.Error("the idle connection was not closed to make room")
	}
	if n := g.Open(); n > 2 {
		t.Errorf("%d connections open, bound 2", n)
	}
	if g.Shed.Load() == 0 {
		t.Error("no connection counted as shed")
	}
}
