package sensors_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/sensors"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rowCounts is what a refused manifest must leave unchanged.
func rowCounts(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(ctxT(t), `SELECT (SELECT count(*) FROM sensor) || '/' || (SELECT count(*) FROM trigger) || '/' ||
		(SELECT count(*) FROM sensor_workload) || '/' || (SELECT count(*) FROM sensor_workload_assignment)`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantOf reads the "# want: …" first line of a corpus file.
func wantOf(t *testing.T, path string) string {
	t.Helper()
	if strings.HasSuffix(path, ".json") {
		return map[string]string{
			"30_bad.json": "sensors[0].placement.selector.zone: label values must be strings",
		}[filepath.Base(path)]
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	want, ok := strings.CutPrefix(strings.TrimSpace(line), "# want: ")
	if !ok {
		t.Fatalf("%s: the first line must be '# want: <message>'", path)
	}
	return want
}

// Every manifest of the bad corpus is refused with the path of the field,
// and nothing is written.
func TestBadManifests(t *testing.T) {
	d := dbtest.New(t)
	ctx := ctxT(t)
	// A trigger that belongs to another sensor, for 32_trigger_taken.
	if _, err := sensors.Add(ctx, d.Handle(t), []sensors.Sensor{{Ref: "seed.owner", Runtime: "core.sensor.shell", Entrypoint: "x.sh",
		Triggers: []sensors.Trigger{{Ref: "seed.taken"}}}}, false); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/bad/*")
	if len(files) < 20 {
		t.Fatalf("the bad corpus has %d files, want at least 20", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := wantOf(t, path)
			before := rowCounts(t, d.Pool)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ss, err := sensors.ParseManifestFile(path, data)
			if err == nil {
				_, err = sensors.Add(ctx, d.Handle(t), ss, false)
			}
			var ve *sensors.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%v", want, err)
			}
			if after := rowCounts(t, d.Pool); after != before {
				t.Errorf("rows changed from %s to %s: a refused manifest wrote something", before, after)
			}
		})
	}
}

func TestAddUpdateEnableList(t *testing.T) {
	d := dbtest.New(t)
	ctx := ctxT(t)
	var all []sensors.Sensor
	for _, f := range []string{"testdata/good/sensors.yaml", "testdata/good/one.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := sensors.ParseManifest(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, ss...)
	}
	res, err := sensors.Add(ctx, d.Handle(t), all, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 3 || len(res.TriggersCreated) != 3 {
		t.Fatalf("created %v, triggers %v", res.Created, res.TriggersCreated)
	}
	if _, err := sensors.Add(ctx, d.Handle(t), all[:1], false); !errors.Is(err, sensors.ErrExists) {
		t.Errorf("adding again: %v, want ErrExists", err)
	}
	changed := all[0]
	changed.Entrypoint = "sensors/disk2.py"
	res, err = sensors.Add(ctx, d.Handle(t), []sensors.Sensor{changed}, true)
	if err != nil || !slices.Equal(res.Updated, []string{"acme.disk_watch"}) {
		t.Fatalf("update: %+v, %v", res, err)
	}
	var entry, trigCfg string
	var selector string
	if err := d.Pool.QueryRow(ctx, `SELECT entrypoint, config->'triggers'->'acme.disk_ok'->>'quiet', worker_selector::text FROM sensor WHERE ref = 'acme.disk_watch'`).Scan(&entry, &trigCfg, &selector); err != nil {
		t.Fatal(err)
	}
	if entry != "sensors/disk2.py" || trigCfg != "true" || selector != `{"zone": "eu-1"}` {
		t.Errorf("stored entrypoint %q, trigger config %q, selector %s", entry, trigCfg, selector)
	}
	if _, err := sensors.SetEnabled(ctx, d.Handle(t), []string{"acme.heartbeat", "acme.nope"}, true); !errors.Is(err, sensors.ErrNotFound) {
		t.Errorf("enabling an unknown ref: %v, want ErrNotFound", err)
	}
	l, err := sensors.List(ctx, d.Handle(t), sensors.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range l.Sensors {
		states[s.Ref] = s.State + ": " + s.Reason
	}
	want := map[string]string{
		"acme.disk_watch": "unschedulable: no live sensor worker",
		"acme.heartbeat":  "disabled: ",
		"acme.json_one":   "unschedulable: no live sensor worker",
	}
	for ref, w := range want {
		if states[ref] != w {
			t.Errorf("%s: %q, want %q", ref, states[ref], w)
		}
	}
	if _, err := sensors.SetEnabled(ctx, d.Handle(t), []string{"acme.heartbeat"}, true); err != nil {
		t.Fatal(err)
	}
	l, err = sensors.List(ctx, d.Handle(t), sensors.ListOptions{State: "disabled"})
	if err != nil || len(l.Sensors) != 0 {
		t.Errorf("disabled after enabling: %v, %v", l.Sensors, err)
	}
	if _, err := sensors.List(ctx, d.Handle(t), sensors.ListOptions{State: "runing"}); err == nil {
		t.Errorf("an unknown state was accepted")
	}
}
