package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

func eventGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testsupport.Golden(t, filepath.Join("..", "..", "testdata", "golden", "event", name), got, *update, "go test ./pkg/cli -run 'TestEventListGolden' -update")
}

// eventFixture writes events at fixed times before goldenNow: two of
// acme.ticker (one with its fence recorded), one with a long payload, one
// without a source, one with control characters in its trigger ref.
func eventFixture(t *testing.T) *dbtest.DB {
	t.Helper()
	db := dbtest.New(t)
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO event (trigger_ref, payload, source_ref, created, source_workload, source_generation) VALUES
		('acme.tick', '{"n": 1, "timestamp": "2025-06-01T11:58:00Z"}', 'acme.ticker', '2025-06-01T11:58:00Z', 7, 2),
		('acme.tick', '{"n": 2}', 'acme.ticker', '2025-06-01T11:59:30Z', NULL, NULL),
		('acme.disk_full', $1::jsonb, 'acme.disk_watch', '2025-06-01T11:59:50Z', 3, 1),
		('acme.manual', NULL, NULL, '2025-05-30T12:00:00Z', NULL, NULL),
		(E'acme.evil\x1b[2J', '{"s": "\u001b]0;x\u0007"}', 'acme.ticker', '2025-06-01T11:59:59Z', NULL, NULL)`,
		`{"message": "`+strings.Repeat("disk nearly full ", 8)+`", "used": 97}`)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestEventListGolden(t *testing.T) {
	t.Parallel()
	db := eventFixture(t)
	for _, c := range []struct {
		name     string
		format   output.Format
		terminal bool
	}{
		{"list-table", output.Table, false},
		{"list-table-terminal", output.Table, true},
		{"list-wide", output.Wide, false},
		{"list-json", output.JSON, false},
		{"list-yaml", output.YAML, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			app, out, _ := testApp("")
			if err := runEventList(context.Background(), app, dbOf(db), eventListOptions{Format: c.format, Terminal: c.terminal, Limit: defaultEventLimit}); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out.String(), "\x1b") && c.format != output.JSON && c.format != output.YAML {
				t.Errorf("a control character of the database reached the table:\n%q", out)
			}
			eventGolden(t, c.name+".golden", out.Bytes())
		})
	}
}

func TestEventListRun(t *testing.T) {
	t.Parallel()
	db := eventFixture(t)
	ctx := context.Background()
	ids := func(o eventListOptions) string {
		t.Helper()
		app, out, _ := testApp("")
		o.Format = output.JSON
		if err := runEventList(ctx, app, dbOf(db), o); err != nil {
			t.Fatal(err)
		}
		var evs []struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(out.Bytes(), &evs); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var s []string
		for _, e := range evs {
			s = append(s, strings.TrimSpace(string(rune('0'+e.ID))))
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		name string
		o    eventListOptions
		want string
	}{
		{"all", eventListOptions{}, "1,2,3,4,5"},
		{"sensor", eventListOptions{Sensor: "acme.ticker"}, "1,2,5"},
		{"trigger", eventListOptions{Trigger: "acme.tick"}, "1,2"},
		{"limit keeps the newest", eventListOptions{Limit: 2}, "4,5"},
		{"limit with a filter", eventListOptions{Sensor: "acme.ticker", Limit: 2}, "2,5"},
		{"since (by the database clock: the fixture is in the past)", eventListOptions{Since: time.Hour}, ""},
	} {
		if got := ids(c.o); got != c.want {
			t.Errorf("%s: ids %q, want %q", c.name, got, c.want)
		}
	}
	app, out, errOut := testApp("")
	if err := runEventList(ctx, app, dbOf(db), eventListOptions{Sensor: "acme.nope", Format: output.Table}); err != nil || out.Len() != 0 || errOut.String() != "No events found.\n" {
		t.Errorf("empty: %v %q %q", err, out, errOut)
	}
	for _, o := range []eventListOptions{{Since: -time.Second}, {Limit: -1}, {Follow: true, Format: output.YAML}} {
		if err := o.Validate(); ExitCode(err) != ExitUsage {
			t.Errorf("%+v: %v, want a usage error", o, err)
		}
	}
	env := rtEnv(db, "/nonexistent")
	for _, args := range [][]string{{"event", "list", "-o", "name"}, {"event", "list", "--since", "yesterday"}, {"event", "list", "extra"}} {
		if r := rtExec(t, env, "", args...); r.Code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.Code, r.Stderr)
		}
	}
}

// --follow -o json prints the listing and then each new event as one line
// of JSON, until cancelled (exit 0).
func TestEventListFollow(t *testing.T) {
	t.Parallel()
	db := eventFixture(t)
	var out testsupport.SyncBuffer
	app, _, _ := testApp("")
	app.Out = &out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runEventList(ctx, app, dbOf(db), eventListOptions{Sensor: "acme.ticker", Follow: true, Format: output.JSON, Limit: 1, Poll: 5 * time.Second})
	}()
	waitLines := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) >= n && lines[0] != "" {
				return lines
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited for %d lines, got:\n%s", n, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLines(1)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO event (trigger_ref, payload, source_ref) VALUES ('acme.tick', '{"n": 3}', 'acme.ticker'), ('acme.other', '{}', 'acme.other');
		SELECT pg_notify('attunectl_event', '6')`); err != nil {
		t.Fatal(err)
	}
	lines := waitLines(2) // woken by the NOTIFY, long before the 5 s poll
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
	if len(lines) != 2 {
		t.Fatalf("lines:\n%s", out.String())
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev["trigger_ref"] != "acme.tick" || ev["id"] != float64(6) {
		t.Errorf("followed event %v (%v)", lines[1], err)
	}
	if !bytes.HasPrefix([]byte(lines[0]), []byte(`{"id":5,`)) {
		t.Errorf("first line (the newest existing event): %s", lines[0])
	}
}

// --follow in a table prints the header once and each event as one line
// at once (not held back to measure widths), escaped.
func TestEventListFollowTable(t *testing.T) {
	t.Parallel()
	db := eventFixture(t)
	var out testsupport.SyncBuffer
	app, _, _ := testApp("")
	app.Out = &out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runEventList(ctx, app, dbOf(db), eventListOptions{Follow: true, Format: output.Wide, Limit: 2, Poll: 100 * time.Millisecond})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := "ID       CREATED     TRIGGER                SENSOR                 GENERATION   WORKLOAD   PAYLOAD\n" +
		"4        2d ago      acme.manual            -                      -            -          null\n" +
		"5        1s ago      acme.evil\\x1b[2J       acme.ticker            -            -          {\"s\":\"\\u001b]0;x\\u0007\"}\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
