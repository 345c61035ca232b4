package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// report is what one run measured. Durations in the JSON form are
// milliseconds (…_ms) or seconds (…_seconds); sizes are bytes.
type report struct {
	Options options `json:"-"`

	CPUs   int `json:"cpus"`
	Server struct {
		Version           string `json:"version"`
		SynchronousCommit string `json:"synchronous_commit"`
		Fsync             string `json:"fsync"`
	} `json:"server"`
	Fillfactor string   `json:"fillfactor"`
	Indexes    []string `json:"indexes"`

	RegisterSeconds   float64 `json:"register_seconds"`
	RegisterPerSecond float64 `json:"register_per_second"`

	ElapsedSeconds    float64            `json:"elapsed_seconds"`
	WindowSeconds     float64            `json:"window_seconds"`
	Heartbeats        int                `json:"heartbeats"`
	AfterWindow       int                `json:"after_window"`
	Missed            int                `json:"missed"`
	Errors            int                `json:"errors"`
	Timeouts          int                `json:"timeouts"`
	ErrorMessages     map[string]int     `json:"error_messages,omitempty"`
	TargetPerSecond   float64            `json:"target_per_second"`
	AchievedPerSecond float64            `json:"achieved_per_second"`
	LatencyMS         map[string]float64 `json:"latency_ms"`
	LateMS            map[string]float64 `json:"late_ms"`

	Start          snapshot `json:"start"`
	End            snapshot `json:"end"`
	Updates        int64    `json:"updates"`
	HOTUpdates     int64    `json:"hot_updates"`
	HOTShare       float64  `json:"hot_share"`
	TableGrowth    float64  `json:"table_growth"`
	IndexGrowth    float64  `json:"index_growth"`
	WALBytesPerHB  float64  `json:"wal_bytes_per_heartbeat"`
	WALSyncsPerSec float64  `json:"wal_syncs_per_second"`
	Autovacuums    int64    `json:"autovacuums"`

	// LoadAverage is /proc/loadavg's 1-minute figure before and after the
	// run: other work on the machine skews the figures.
	LoadAverage [2]string `json:"load_average"`

	Checks []check `json:"checks"`
	Passed bool    `json:"passed"`
}

// check is one target and whether the run met it.
type check struct {
	What   string `json:"what"`
	Target string `json:"target"`
	Got    string `json:"got"`
	OK     bool   `json:"ok"`
}

// finish computes the figures from the recorder and the two snapshots, and
// checks them against the targets.
func (r *report) finish(rec *recorder, elapsed time.Duration) {
	o := r.Options
	rec.mu.Lock()
	all, lags := rec.all, rec.lags
	r.Errors = 0
	for _, n := range rec.errs {
		r.Errors += n
	}
	if len(rec.errs) > 0 {
		r.ErrorMessages = rec.errs
	}
	r.Timeouts = rec.timeouts
	inWindow, after, missed := rec.inWindow, rec.outside, rec.missed
	rec.mu.Unlock()
	slices.Sort(all)
	slices.Sort(lags)

	// Only the heartbeats that completed inside the window [start, start +
	// duration] count toward the rate; those the senders finished after
	// it, or never started in it, do not.
	window := min(elapsed, o.Duration)
	r.ElapsedSeconds = elapsed.Seconds()
	r.WindowSeconds = window.Seconds()
	r.Heartbeats, r.AfterWindow, r.Missed = inWindow, after, missed
	r.AchievedPerSecond = float64(inWindow) / window.Seconds()
	r.LatencyMS = map[string]float64{
		"p50": msf(percentile(all, 0.50)), "p90": msf(percentile(all, 0.90)), "p99": msf(percentile(all, 0.99)),
		"p99.9": msf(percentile(all, 0.999)), "max": msf(percentile(all, 1)),
	}
	r.LateMS = map[string]float64{"p50": msf(percentile(lags, 0.50)), "p99": msf(percentile(lags, 0.99)), "max": msf(percentile(lags, 1))}

	r.Updates = r.End.Updates - r.Start.Updates
	r.HOTUpdates = r.End.HOTUpdates - r.Start.HOTUpdates
	if r.Updates > 0 {
		r.HOTShare = float64(r.HOTUpdates) / float64(r.Updates)
	}
	if r.Start.TableBytes > 0 {
		r.TableGrowth = float64(r.End.TableBytes-r.Start.TableBytes) / float64(r.Start.TableBytes)
	}
	if r.Start.IndexBytes > 0 {
		r.IndexGrowth = float64(r.End.IndexBytes-r.Start.IndexBytes) / float64(r.Start.IndexBytes)
	}
	if n := r.Heartbeats + r.AfterWindow; n > 0 {
		r.WALBytesPerHB = float64(r.End.WALBytes-r.Start.WALBytes) / float64(n)
	}
	r.WALSyncsPerSec = float64(r.End.WALSyncs-r.Start.WALSyncs) / elapsed.Seconds()
	r.Autovacuums = r.End.Autovacuums - r.Start.Autovacuums

	// The target rate counts only the heartbeats due within the elapsed
	// time (an interrupted run is judged on what it ran).
	due := r.TargetPerSecond * window.Seconds()
	r.Checks = []check{
		{What: "heartbeats/s", Target: fmt.Sprintf(">= 99%% of %.0f", r.TargetPerSecond), Got: fmt.Sprintf("%.0f", r.AchievedPerSecond), OK: float64(r.Heartbeats) >= 0.99*due},
		{What: "lateness p99", Target: "<= " + o.MaxLateP99.String(), Got: fmt.Sprintf("%.0fms", r.LateMS["p99"]), OK: percentile(lags, 0.99) <= o.MaxLateP99},
		{What: "errors", Target: "0", Got: fmt.Sprint(r.Errors), OK: r.Errors == 0},
		{What: "latency p99", Target: "< " + o.MaxP99.String(), Got: fmt.Sprintf("%.2fms", r.LatencyMS["p99"]), OK: percentile(all, 0.99) < o.MaxP99},
		{What: "HOT updates", Target: fmt.Sprintf(">= %.0f%%", 100*o.MinHOT), Got: fmt.Sprintf("%.1f%%", 100*r.HOTShare), OK: r.HOTShare >= o.MinHOT},
		{What: "table growth", Target: fmt.Sprintf("<= %.0f%%", 100*o.MaxGrowth), Got: fmt.Sprintf("%+.1f%%", 100*r.TableGrowth), OK: r.TableGrowth <= o.MaxGrowth},
	}
	r.Passed = true
	for _, c := range r.Checks {
		r.Passed = r.Passed && c.OK
	}
}

func (r *report) writeJSON(w io.Writer) error {
	type withOptions struct {
		*report
		Workers            int     `json:"workers"`
		IntervalSeconds    float64 `json:"interval_seconds"`
		DurationSeconds    float64 `json:"duration_seconds"`
		Connections        int     `json:"connections"`
		HeartbeatSync      string  `json:"heartbeat_synchronous_commit"`
		MigrateTo          int64   `json:"migrate_to,omitempty"`
		IndexLastHeartbeat bool    `json:"index_last_heartbeat"`
	}
	o := r.Options
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(withOptions{report: r, Workers: o.Workers, IntervalSeconds: o.Interval.Seconds(),
		DurationSeconds: o.Duration.Seconds(), Connections: o.Connections, HeartbeatSync: hbSync(o),
		MigrateTo: o.MigrateTo, IndexLastHeartbeat: o.IndexLastHeartbeat})
}

func (r *report) writeText(w io.Writer) error {
	o := r.Options
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("loadsim: %d workers, heartbeat every %s, for %s, over %d connections\n", o.Workers, o.Interval, o.Duration, o.Connections)
	p("server:  PostgreSQL %s, %d CPUs (shared with loadsim), fsync %s, synchronous_commit %s (heartbeats: %s)\n",
		r.Server.Version, r.CPUs, r.Server.Fsync, r.Server.SynchronousCommit, hbSync(o))
	p("schema:  worker fillfactor %s, indexes %s\n", r.Fillfactor, strings.Join(r.Indexes, ", "))
	p("register: %d workers in %.1fs (%.0f/s)\n", o.Workers, r.RegisterSeconds, r.RegisterPerSecond)
	p("machine load average (1 min): %s before, %s after\n\n", r.LoadAverage[0], r.LoadAverage[1])

	p("heartbeats    %d completed in the %.1fs window: %.0f/s (target %.0f/s); %d completed after it, %d due in it never started in it; %d errors (%d timeouts)\n",
		r.Heartbeats, r.WindowSeconds, r.AchievedPerSecond, r.TargetPerSecond, r.AfterWindow, r.Missed, r.Errors, r.Timeouts)
	p("latency       p50 %.2fms  p90 %.2fms  p99 %.2fms  p99.9 %.2fms  max %.2fms\n",
		r.LatencyMS["p50"], r.LatencyMS["p90"], r.LatencyMS["p99"], r.LatencyMS["p99.9"], r.LatencyMS["max"])
	p("late start    p50 %.2fms  p99 %.2fms  max %.2fms (how far behind its schedule a heartbeat started; a missed one counts as late as when it was dropped)\n",
		r.LateMS["p50"], r.LateMS["p99"], r.LateMS["max"])
	p("HOT updates   %d of %d (%.1f%%)\n", r.HOTUpdates, r.Updates, 100*r.HOTShare)
	p("table         %s -> %s (%+.1f%%)\n", mb(r.Start.TableBytes), mb(r.End.TableBytes), 100*r.TableGrowth)
	p("indexes       %s -> %s (%+.1f%%)\n", mb(r.Start.IndexBytes), mb(r.End.IndexBytes), 100*r.IndexGrowth)
	p("WAL           %.0f bytes per heartbeat, %.0f WAL syncs/s, %d autovacuums of worker\n\n",
		r.WALBytesPerHB, r.WALSyncsPerSec, r.Autovacuums)
	if len(r.ErrorMessages) > 0 {
		msgs := make([]string, 0, len(r.ErrorMessages))
		for m := range r.ErrorMessages {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		p("errors:\n")
		for _, m := range msgs {
			p("  %6d  %s\n", r.ErrorMessages[m], m)
		}
		p("\n")
	}
	for _, c := range r.Checks {
		verdict := "ok"
		if !c.OK {
			verdict = "MISSED"
		}
		p("%-6s %-13s %-12s target %s\n", verdict, c.What, c.Got, c.Target)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", msf(d)) }

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// loadAverage is the 1-minute load average, or "?" where /proc has none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// hbSync is the synchronous_commit the heartbeat statements ran with.
func hbSync(o options) string {
	if o.HeartbeatSyncCommit == "" {
		return "off"
	}
	return o.HeartbeatSyncCommit
}
