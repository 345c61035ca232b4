package sensorworker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/netguard"
)

// serveTestMetrics serves h with limits on a loopback port until the test ends.
func serveTestMetrics(t *testing.T, h http.Handler, logger *slog.Logger, limits MetricsLimits) string {
	t.Helper()
	ln, srv, err := ListenMetrics("127.0.0.1:0", h, logger, limits)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
}

// closedWithin reads from c until the server closes it; it fails the test
// when that takes longer than limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for more than %s", limit)
	}
	return took
}

func TestMetricsServerClosesSilentAndIdleConnections(t *testing.T) {
	t.Parallel()
	limits := MetricsLimits{ReadHeader: 300 * time.Millisecond, Read: time.Second, Write: time.Second, Idle: 400 * time.Millisecond, MaxConns: 4}
	addr := serveTestMetrics(t, okHandler(), nil, limits)

	t.Run("connects and never speaks", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		took := closedWithin(t, c, 3*time.Second)
		t.Logf("silent connection closed after %s (read-header timeout %s)", took.Round(time.Millisecond), limits.ReadHeader)
	})
	t.Run("keep-alive connection left idle", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok\n" || resp.Close {
			t.Fatalf("response %d %q close=%v", resp.StatusCode, body, resp.Close)
		}
		took := closedWithin(t, c, 3*time.Second)
		t.Logf("idle keep-alive connection closed after %s (idle timeout %s)", took.Round(time.Millisecond), limits.Idle)
	})
	t.Run("sends headers slowly", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /healthz HTTP/1.1\r\n")
		go func() { // a byte every 100ms, forever: the read-header deadline must still fire
			for range 50 {
				if _, err := io.WriteString(c, "X"); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		closedWithin(t, c, 3*time.Second)
	})
}

// TestMetricsServerConnectionLimit: connections that hold every slot and
// never speak (or idle between requests) neither exhaust the worker's
// descriptors nor lock out a probe: at the bound the idle ones make room,
// and /healthz answers within a second.
func TestMetricsServerConnectionLimit(t *testing.T) {
	t.Parallel()
	limits := MetricsLimits{ReadHeader: 20 * time.Second, Read: 20 * time.Second, Write: 20 * time.Second, Idle: 20 * time.Second, MaxConns: 8}
	ln, srv, err := ListenMetrics("127.0.0.1:0", okHandler(), nil, limits)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	get := func(timeout time.Duration) error {
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	// Far more silent connections than slots.
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(200 * time.Millisecond) // let the server accept them
	begin := time.Now()
	if err := get(time.Second); err != nil {
		t.Fatalf("a probe behind 200 silent connections: %v", err)
	}
	t.Logf("probe answered %s after 200 silent connections (limit %d)", time.Since(begin).Round(time.Millisecond), limits.MaxConns)
	if open := ln.(*netguard.Listener).Open(); open > limits.MaxConns {
		t.Errorf("%d connections open, limit %d", open, limits.MaxConns)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMetricsServerErrorsGoThroughSlog(t *testing.T) {
	// Not parallel: it redirects the log package's output.
	var plain syncBuffer
	defer log.SetOutput(log.Writer())
	log.SetOutput(&plain)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	panicking := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	addr := serveTestMetrics(t, panicking, logger, DefaultMetricsLimits)

	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "boom") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	line := strings.TrimSpace(logs.String())
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.Split(line, "\n")[0]), &rec); err != nil {
		t.Fatalf("the server's error is not a JSON log line: %v\n%s", err, line)
	}
	if rec["level"] != "WARN" || rec["component"] != "metrics" || !strings.Contains(rec["msg"].(string), "panic serving") {
		t.Errorf("log record %v", rec)
	}
	if plain.String() != "" {
		t.Errorf("the log package printed: %q", plain.String())
	}
}
