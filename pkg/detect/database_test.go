package detect

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/runtimes"
)

func TestMain(m *testing.M) {
	// A re-executed test binary plays attunectl in a situation the test
	// itself cannot be in (another user, fewer file descriptors).
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(childMain(role))
	}
	dbtest.Main(m)
}

// TestDetectFromMigratedDatabase is the seed's verification result: the
// migrated database's sensor runtimes on a host with python3 and node (here
// the fake ones), plus a runtime whose binary does not exist, which is
// listed unavailable with its reason.
func TestDetectFromMigratedDatabase(t *testing.T) {
	ctx := context.Background()
	tdb := dbtest.New(t)
	db, err := database.Open(ctx, database.Options{URL: tdb.URL, Schema: tdb.Schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	haskell := runtimes.Runtime{Ref: "test.sensor.haskell", Name: "Haskell", Type: runtimes.TypeSensor,
		Verification: &runtimes.Verification{Commands: []runtimes.Command{{Binary: "ghc", Args: []string{"--version"}}}}}
	if _, err := runtimes.Add(ctx, db, []runtimes.Runtime{haskell}, false); err != nil {
		t.Fatal(err)
	}
	in := Input{Load: func(ctx context.Context) ([]runtimes.Runtime, error) { return runtimes.SensorRuntimes(ctx, db) }}
	res, err := Detect(ctx, in, Options{RunAs: selfRunAs(), Environ: envWithPATH(fakePATH(t))})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != SourceDatabase {
		t.Errorf("source = %s", res.Source)
	}
	if want := []string{"built-in sensor", "native", "node.js", "python", "shell"}; !reflect.DeepEqual(res.Available, want) {
		t.Errorf("available = %q, want %q", res.Available, want)
	}
	var hs *RuntimeResult
	for i := range res.Runtimes {
		if res.Runtimes[i].Ref == "test.sensor.haskell" {
			hs = &res.Runtimes[i]
		}
	}
	if hs == nil || hs.Available || hs.Reason != "not found on PATH" {
		t.Errorf("haskell: %+v", hs)
	}
	// The environment still wins over the database.
	in.EnvRuntimes = "shell"
	res, err = Detect(ctx, in, Options{RunAs: selfRunAs()})
	if err != nil || res.Source != SourceEnv || !reflect.DeepEqual(res.Available, []string{"shell"}) {
		t.Errorf("env: %+v %v", res, err)
	}
}

// TestDatabaseRowCommandLimit: a row written by someone else with more
// than 32 verification commands (runtime add refuses that) is refused the
// same way at detection: none of its commands runs.
func TestDatabaseRowCommandLimit(t *testing.T) {
	ctx := context.Background()
	tdb := dbtest.New(t)
	db, err := database.Open(ctx, database.Options{URL: tdb.URL, Schema: tdb.Schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tmp := t.TempDir()
	marker := tmp + "/marker"
	script := writeScript(t, tmp, "touchme", "touch \""+marker+"\"\n")
	cmds := make([]string, 33)
	for i := range cmds {
		cmds[i] = fmt.Sprintf(`{"binary": %q, "args": ["%d"]}`, script, i)
	}
	dist := `{"verification": {"commands": [` + strings.Join(cmds, ",") + `]}}`
	if _, err := db.Pool.Exec(ctx, `INSERT INTO runtime (ref, name, runtime_type, distributions) VALUES ('evil.sensor.many', 'Many', 'sensor', $1::jsonb)`, dist); err != nil {
		t.Fatal(err)
	}
	in := Input{Load: func(ctx context.Context) ([]runtimes.Runtime, error) { return runtimes.SensorRuntimes(ctx, db) }}
	res, err := Detect(ctx, in, Options{RunAs: selfRunAs(), Environ: envWithPATH(fakePATH(t))})
	if err != nil {
		t.Fatal(err)
	}
	var many *RuntimeResult
	for i := range res.Runtimes {
		if res.Runtimes[i].Ref == "evil.sensor.many" {
			many = &res.Runtimes[i]
		}
	}
	if many == nil || many.Available || many.Reason != "33 verification commands, more than the limit of 32: none was run" {
		t.Errorf("%+v", many)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a command of the over-long row ran")
	}
}
