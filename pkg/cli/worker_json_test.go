package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// encodeView is the -o json element encoding/json writes for r: what
// appendWorkerJSON must write byte for byte.
func encodeView(t testing.TB, r workers.Row, withPlacement bool) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("  ", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(viewOf(r, withPlacement)); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// TestAppendWorkerJSONOnPostgreSQLRows writes workers read from
// PostgreSQL both ways: where the fast writer writes a row, it writes what
// encoding/json writes; the rows attunectl itself writes take the fast way.
func TestAppendWorkerJSONOnPostgreSQLRows(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	rows := []struct {
		name, caps, meta string
		port             any
		fast             bool
	}{
		{"plain", `{"runtimes": ["built-in sensor", "python"], "sensor_version": "0.1.0", "runtime_versions": {"python": "3.11.7", "node.js": "v20.11.1"}, "heartbeat_interval": 60, "max_concurrent_sensors": 10}`,
			`{"pid": 1001, "hostname": "host-1", "instance_id": "i-1"}`, nil, true},
		{"html <&> and ünïcödé \u2028", `{"runtimes": ["a<b", "c&d"], "sensor_version": "<1.0>", "detection_source": "env", "heartbeat_interval": 0.5}`,
			`{"note": "<b>&</b>", "日本": [1, 2.50, -0, 1e-7, 12345678901234567890, {"z": null, "a": true}], "empty": {}, "list": []}`, 5432, true},
		{"no capabilities", ``, ``, nil, true},
		{"empty capabilities", `{}`, `{}`, nil, true},
		{"empty lists", `{"runtimes": [], "runtime_versions": {}}`, `{"x": false}`, nil, true},
		{"escaped meta", `{"runtimes": ["shell"]}`, `{"line": "a\nb", "tab": "\t"}`, nil, false},
		{"meta array", `{"runtimes": ["shell"]}`, `[1, 2]`, nil, false},
		{"meta out of range", `{"runtimes": ["shell"]}`, `{"n": 1e400}`, nil, false},
		{"extra capability", `{"runtimes": ["shell"], "gpu": true}`, `{}`, nil, false},
		{"capability of another type", `{"runtimes": "shell", "heartbeat_interval": "30"}`, `{}`, nil, false},
		{"name \"quoted\" \\ \x01", `{"runtimes": ["shell"], "max_concurrent_sensors": 3}`, `{"k": "v"}`, nil, true},
	}
	for _, r := range rows {
		var caps, meta any
		if r.caps != "" {
			caps = r.caps
		}
		if r.meta != "" {
			meta = r.meta
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO worker (name, worker_role, worker_type, status, host, port, capabilities, meta, last_heartbeat)
			VALUES ($1, 'sensor', 'local', 'active', 'h', $2, $3, $4, CASE WHEN $1 = 'plain' THEN NULL ELSE now() - interval '61.2345 seconds' END)`,
			r.name, r.port, caps, meta); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE worker SET cordoned = true, cordon_reason = 'disk <full>', cordoned_by_name = 'ops', cordoned_at = now() WHERE name = 'plain'`); err != nil {
		t.Fatal(err)
	}
	fast := map[string]bool{}
	for _, r := range rows {
		fast[r.name] = r.fast
	}
	seen := 0
	for _, withPlacement := range []bool{true, false} {
		fields := workerFields("json", withPlacement, output.Palette{})
		_, err := workers.Stream(ctx, db.Handle(t), workers.ListOptions{}, workers.StreamOptions{Fields: fields}, func(r workers.Row) error {
			seen++
			want := encodeView(t, r, withPlacement)
			got, ok := appendWorkerJSON([]byte("x"), r, withPlacement)
			switch {
			case !ok && string(got) != "x":
				t.Errorf("%q: not written, yet %q appended", r.Name, got)
			case ok && string(got[1:]) != want:
				t.Errorf("%q: fast writer\n%s\nencoding/json\n%s", r.Name, got[1:], want)
			case ok != fast[r.Name]:
				t.Errorf("%q: fast writer took it: %v, want %v", r.Name, ok, fast[r.Name])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen != 2*len(rows) {
		t.Fatalf("streamed %d rows, want %d", seen, 2*len(rows))
	}
}

// FuzzAppendWorkerJSON: for any strings, numbers, capabilities and meta,
// the fast writer writes what encoding/json writes, or leaves the row to it.
func FuzzAppendWorkerJSON(f *testing.F) {
	f.Add("w-1", "host", `{"runtimes": ["python"], "heartbeat_interval": 30}`, `{"pid": 1}`, 12.3456, 90.0, true, "reason")
	f.Add("<&>\u2028\xff", "", `{"sensor_version": "<x>", "runtime_versions": {"b": "2", "a": "1"}}`, `{"a": [1.5, "x", {}]}`, -1.0, 0.0, false, "")
	f.Add("n", "h", `{}`, `null`, 1e-9, 1e22, true, "\n")
	f.Fuzz(func(t *testing.T, name, host, caps, meta string, silence, grace float64, cordoned bool, reason string) {
		if math.IsNaN(silence) || math.IsInf(silence, 0) || math.IsNaN(grace) || math.IsInf(grace, 0) || math.Abs(silence) > 1e9 || math.Abs(grace) > 1e9 {
			return
		}
		hb := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
		r := workers.Row{Grace: time.Duration(grace * float64(time.Second)), InstanceID: name}
		r.Worker = workers.Worker{ID: 7, Name: name, Host: host, Role: "sensor", Type: "local", State: "active", Status: "active",
			LastHeartbeat: &hb, Silence: time.Duration(silence * float64(time.Second)), Created: hb, Updated: hb}
		if json.Unmarshal([]byte(caps), &r.Capabilities) != nil {
			return
		}
		if meta != "null" {
			r.MetaJSON = []byte(meta)
		}
		r.Placement = workers.Placement{Cordoned: cordoned, Reason: reason, Held: 2}
		for _, withPlacement := range []bool{true, false} {
			got, ok := appendWorkerJSON(nil, r, withPlacement)
			if !ok {
				continue
			}
			if want := encodeView(t, r, withPlacement); string(got) != want {
				t.Fatalf("fast writer\n%s\nencoding/json\n%s", got, want)
			}
		}
	})
}

// TestListAndStaleShowHeartbeatAlike: worker list and worker stale render
// the same worker's last heartbeat identically, in the table and -o wide.
func TestListAndStaleShowHeartbeatAlike(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	hb := now.Add(-10*time.Minute - 30*time.Second)
	rows := []workers.Row{
		{At: now, Worker: workers.Worker{Name: "old", State: "stale", LastHeartbeat: &hb, Silence: now.Sub(hb)}},
		{At: now, Worker: workers.Worker{Name: "never", State: "stale"}},
	}
	cell := func(cols []output.Column[workers.Row], r workers.Row) string {
		for _, c := range cols {
			if c.Header == "LAST HEARTBEAT" {
				return c.Cell(r)
			}
		}
		t.Fatal("no LAST HEARTBEAT column")
		return ""
	}
	list, stale := workerSpec(false, true), workerSpec(true, true)
	for _, r := range rows {
		for _, pair := range [][2][]output.Column[workers.Row]{{list.Columns, stale.Columns}, {list.Wide, stale.Wide}} {
			if l, s := cell(pair[0], r), cell(pair[1], r); l != s {
				t.Errorf("%s: worker list shows %q, worker stale %q", r.Name, l, s)
			}
		}
	}
	if got := cell(stale.Columns, rows[0]); got != "10m30s ago" {
		t.Errorf("stale table: LAST HEARTBEAT %q, want 10m30s ago", got)
	}
}
