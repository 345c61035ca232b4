package supervise

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/attune-automation/attunectl/pkg/fence"
	"github.com/attune-automation/attunectl/pkg/netguard"
	"github.com/attune-automation/attunectl/pkg/ratelog"
)

// MaxEventBytes bounds an event request's body; a larger one gets 413.
const MaxEventBytes = 64 << 10

// MaxEndpointConns bounds the connections open to the event endpoint at
// once; at the bound the one idle the longest makes room (pkg/netguard), so
// idle connections from any local user can neither exhaust the worker's
// descriptors nor keep a sensor from posting.
const MaxEndpointConns = 512

// EndpointOptions configure the event endpoint.
type EndpointOptions struct {
	// Addr is the loopback address to listen on; "" is 127.0.0.1:0.
	Addr string
	// RatePerSecond and Burst bound the events one sensor process may post
	// (a token bucket per grant); over it the answer is 429.
	RatePerSecond float64
	Burst         int
	// Logger receives refusals and errors; nil discards them.
	Logger *slog.Logger
	// OnStale is called (once per grant) when a write finds the fence stale,
	// so the supervisor stops the process at once.
	OnStale func(f fence.Fence)
	// OnResult is called for every request with the sensor's ref ("" when
	// unauthenticated) and the HTTP status answered; for metrics.
	OnResult func(ref string, status int)
	// Checker, when set, checks each event as Attune's API does before it
	// is written (pkg/events.Checker); nil writes what the grant allows.
	Checker EventChecker
}

// Default rate limit of one sensor process's events.
const (
	DefaultEventRate  = 10000
	DefaultEventBurst = 10000
)

// Endpoint serves Attune's event API on loopback: POST /events and
// /api/v1/events with a bearer token that is valid only for one sensor
// process, that is one (workload, generation).
type Endpoint struct {
	opts   EndpointOptions
	writer EventWriter
	log    *slog.Logger

	mu     sync.Mutex
	grants map[string]*grant
	// logLimit keeps failing event writes (a full disk) to a line per
	// sensor per window.
	logLimit *ratelog.Limiter

	ln  net.Listener
	srv *http.Server
}

type grant struct {
	fence     fence.Fence
	sensorID  int64
	sensorRef string
	triggers  map[string]Trigger
	bucket    *bucket
	staleOnce sync.Once
}

// NewEndpoint prepares an endpoint that records events through w.
func NewEndpoint(w EventWriter, opts EndpointOptions) *Endpoint {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.RatePerSecond <= 0 {
		opts.RatePerSecond = DefaultEventRate
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultEventBurst
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Endpoint{opts: opts, writer: w, log: opts.Logger, grants: map[string]*grant{}, logLimit: ratelog.New(ratelog.Window)}
}

// Start listens on the loopback address; any other address is refused,
// since the endpoint is for the worker's own sensor processes.
func (e *Endpoint) Start() error {
	host, _, err := net.SplitHostPort(e.opts.Addr)
	if err != nil {
		return fmt.Errorf("event endpoint: address %q: %v (give host:port, e.g. 127.0.0.1:0)", e.opts.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("event endpoint: address %q is not a loopback address; the endpoint serves only this host's sensors (use 127.0.0.1:PORT)", e.opts.Addr)
	}
	ln, err := net.Listen("tcp", e.opts.Addr)
	if err != nil {
		return fmt.Errorf("event endpoint: listening on %s: %w", e.opts.Addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/events", e.handle)
	mux.HandleFunc("/api/v1/events", e.handle)
	e.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
	guarded := netguard.Listen(ln, MaxEndpointConns)
	guarded.Track(e.srv)
	e.ln = guarded
	go func() { _ = e.srv.Serve(guarded) }()
	return nil
}

// URL is the base URL a sensor process gets as ATTUNE_API_URL.
func (e *Endpoint) URL() string {
	if e.ln == nil {
		return ""
	}
	return "http://" + e.ln.Addr().String()
}

// Close stops serving; requests in flight get until ctx ends.
func (e *Endpoint) Close(ctx context.Context) error {
	if e.srv == nil {
		return nil
	}
	return e.srv.Shutdown(ctx)
}

// Grant issues a token for one sensor process: events posted with it are
// written under fence, for the given triggers only.
func (e *Endpoint) Grant(f fence.Fence, sensorID int64, sensorRef string, triggers []Trigger) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	tok := hex.EncodeToString(b[:])
	g := &grant{fence: f, sensorID: sensorID, sensorRef: sensorRef, triggers: map[string]Trigger{},
		bucket: newBucket(e.opts.RatePerSecond, e.opts.Burst)}
	for _, t := range triggers {
		g.triggers[t.TriggerRef] = t
	}
	e.mu.Lock()
	e.grants[tok] = g
	e.mu.Unlock()
	return tok
}

// Revoke invalidates a token (the process stopped).
func (e *Endpoint) Revoke(token string) {
	e.mu.Lock()
	delete(e.grants, token)
	e.mu.Unlock()
}

type eventRequest struct {
	TriggerRef  string          `json:"trigger_ref"`
	TriggerType string          `json:"trigger_type"`
	Payload     json.RawMessage `json:"payload"`
	// TriggerInstanceID is "rule_<id>" (Attune's SDKs send it).
	TriggerInstanceID string `json:"trigger_instance_id"`
}

func (e *Endpoint) handle(w http.ResponseWriter, r *http.Request) {
	ref := ""
	status := http.StatusInternalServerError
	defer func() {
		if e.opts.OnResult != nil {
			e.opts.OnResult(ref, status)
		}
	}()
	answer := func(code int, body any) {
		status = code
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	}
	fail := func(code int, msg string) { answer(code, map[string]string{"error": msg}) }

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "use POST")
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	e.mu.Lock()
	g := e.grants[strings.TrimSpace(tok)]
	e.mu.Unlock()
	if !ok || g == nil {
		fail(http.StatusUnauthorized, "missing or invalid bearer token (use ATTUNE_API_TOKEN)")
		return
	}
	ref = g.sensorRef
	if r.ContentLength > MaxEventBytes {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("event body over %d bytes", MaxEventBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("event body over %d bytes", MaxEventBytes))
			return
		}
		fail(http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	var req eventRequest
	if err := json.Unmarshal(body, &req); err != nil {
		fail(http.StatusBadRequest, "the body is not JSON of the form {\"trigger_ref\": ..., \"payload\": {...}}: "+err.Error())
		return
	}
	if req.TriggerRef == "" {
		req.TriggerRef = req.TriggerType
	}
	if req.TriggerRef == "" {
		fail(http.StatusBadRequest, "trigger_ref is missing")
		return
	}
	trig, ok := g.triggers[req.TriggerRef]
	if !ok {
		fail(http.StatusForbidden, fmt.Sprintf("trigger %q is not one of sensor %s's triggers", req.TriggerRef, g.sensorRef))
		return
	}
	if !g.bucket.take(time.Now()) {
		w.Header().Set("Retry-After", "1")
		fail(http.StatusTooManyRequests, fmt.Sprintf("sensor %s is over its event rate limit (%g/s)", g.sensorRef, e.opts.RatePerSecond))
		return
	}
	payload := req.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	ev := Event{Fence: g.fence, SensorID: g.sensorID, SensorRef: g.sensorRef,
		TriggerID: trig.ID, TriggerRef: trig.TriggerRef, Config: trig.Config, Payload: payload}
	if e.opts.Checker != nil {
		checked, err := e.opts.Checker.Check(r.Context(), g.sensorID, trig.TriggerRef, req.TriggerInstanceID, payload)
		var ce *CheckError
		switch {
		case errors.As(err, &ce):
			fail(ce.Status, ce.Message)
			return
		case err != nil:
			if ok, left := e.logLimit.Allow("event/" + g.sensorRef); ok {
				e.log.Error("checking an event failed", "sensor", g.sensorRef, "trigger", trig.TriggerRef, "error", err, "suppressed", left)
			}
			fail(http.StatusServiceUnavailable, "the event could not be checked; retry")
			return
		}
		ev.RuleID, ev.RuleRef = checked.RuleID, checked.RuleRef
	}
	id, err := e.writer.WriteEvent(r.Context(), ev)
	switch {
	case errors.Is(err, fence.ErrStale):
		fail(http.StatusConflict, "this sensor's assignment moved on; the process is being stopped")
		g.staleOnce.Do(func() {
			e.log.Warn("event refused: stale fence; stopping the sensor process", "sensor", g.sensorRef, "fence", g.fence.String())
			if e.opts.OnStale != nil {
				go e.opts.OnStale(g.fence)
			}
		})
	case err != nil:
		if ok, left := e.logLimit.Allow("event/" + g.sensorRef); ok {
			e.log.Error("recording an event failed", "sensor", g.sensorRef, "trigger", trig.TriggerRef, "error", err, "suppressed", left)
		}
		fail(http.StatusServiceUnavailable, "the event could not be recorded; retry")
	default:
		answer(http.StatusCreated, map[string]int64{"id": id})
	}
}

// bucket is a token bucket: rate tokens a second up to burst.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
