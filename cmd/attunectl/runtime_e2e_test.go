package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// manifest returns the absolute path of a file under testdata/manifests
// (commands run in a temporary directory).
func manifest(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "manifests", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// runtimeTable is the whole runtime table as JSON.
func runtimeTable(t *testing.T, db *dbtest.DB) string {
	t.Helper()
	var s string
	if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(json_agg(r ORDER BY id)::text, '[]') FROM runtime r`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// verifyJSON is the part of `runtime verify -o json` these tests read.
type verifyJSON struct {
	Source    string   `json:"source"`
	Available []string `json:"available"`
	Runtimes  []struct {
		Ref       string `json:"ref"`
		Available bool   `json:"available"`
		Reason    string `json:"reason"`
	} `json:"runtimes"`
}

// TestRuntimeVerifyOnThisHost is the "done means": on this host
// (python3 and node installed) the seeded sensor runtimes of a migrated
// database are all available, and a runtime whose binary does not exist is
// listed unavailable with its reason, with exit status 3.
func TestRuntimeVerifyOnThisHost(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	environ := dbEnv(t, db)
	seed := []string{"built-in sensor", "native", "node.js", "python", "shell"}

	r := run(t, environ, "runtime", "verify", "-o", "json")
	var res verifyJSON
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || r.Code != 0 {
		t.Fatalf("runtime verify -o json: exit %d, %v\nstdout:\n%s\nstderr:\n%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if !slices.Equal(res.Available, seed) || res.Source != "database" {
		t.Fatalf("available %v (source %s), want %v: this host needs python3 and node on PATH\n%s", res.Available, res.Source, seed, r.Stdout)
	}

	r = run(t, environ, "runtime", "add", "--ref", "test.sensor.missing", "--name", "Missing", "--command", "attunectl-no-such-binary --version")
	if r.Code != 0 || r.Stdout != "runtime test.sensor.missing created\n" {
		t.Fatalf("runtime add: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	r = run(t, environ, "runtime", "verify")
	if r.Code != 3 {
		t.Errorf("runtime verify with an unavailable runtime: exit %d, want 3\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "1 of 6 runtimes not available on this host: test.sensor.missing") {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	for _, row := range []string{
		`(?m)^Built-in Sensor\s+core\.sensor\.builtin\s+yes\s+always\s`,
		`(?m)^Native\s+core\.sensor\.native\s+yes\s+always\s`,
		`(?m)^Node\.js\s+core\.sensor\.nodejs\s+yes\s+node --version\s+\d+\.\d+\.\d+\s`,
		`(?m)^Python\s+core\.sensor\.python\s+yes\s+python3? --version\s+3\.\d+`,
		`(?m)^Shell\s+core\.sensor\.shell\s+yes\s+always\s`,
		`(?m)^Missing\s+test\.sensor\.missing\s+no\s+\S+\s+not found on PATH$`,
	} {
		if !regexp.MustCompile(row).MatchString(r.Stdout) {
			t.Errorf("no row matching %s in:\n%s", row, r.Stdout)
		}
	}

	r = run(t, environ, "runtime", "verify", "-o", "json")
	res = verifyJSON{}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || r.Code != 3 {
		t.Fatalf("runtime verify -o json: exit %d, %v\n%s", r.Code, err, r.Stderr)
	}
	if !slices.Equal(res.Available, seed) {
		t.Errorf("available %v, want %v", res.Available, seed)
	}

	// Only the runtimes asked about decide the exit status.
	r = run(t, environ, "runtime", "verify", "core.sensor.python", "core.sensor.nodejs")
	if r.Code != 0 {
		t.Errorf("verify of available refs: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = run(t, environ, "runtime", "verify", "core.sensor.cobol")
	if r.Code != 2 || !strings.Contains(r.Stderr, "runtime core.sensor.cobol not found") {
		t.Errorf("verify of an unknown ref: exit %d\n%s", r.Code, r.Stderr)
	}
}

// TestRuntimeAddBadManifestsBinary runs a handful of the broken manifests
// (the in-process test in pkg/cli runs them all) and a generated 10 MB file
// through the real binary: exit 2, the message, nothing written.
func TestRuntimeAddBadManifestsBinary(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	environ := dbEnv(t, db)
	before := runtimeTable(t, db)
	for _, name := range []string{"sh-c-binary.yaml", "injection-semicolon.yaml", "unknown-key-patern.yaml", "yaml-syntax-tab.yaml",
		"json-unclosed.json", "exit-code-300.yaml", "duplicate-refs.yaml", "relative-dot-slash.yaml"} {
		path := manifest(t, filepath.Join("bad", name))
		want, err := os.ReadFile(strings.TrimSuffix(path, filepath.Ext(path)) + ".err")
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(want), "\n")
		r := run(t, environ, "runtime", "add", "-f", path)
		if r.Code != 2 || !strings.Contains(r.Stderr, strings.TrimSpace(first)) {
			t.Errorf("%s: exit %d, want 2 and %q in:\n%s", name, r.Code, first, r.Stderr)
		}
	}

	big := bytes.Repeat([]byte("# ten megabytes of comments\n"), 10<<20/28+1)
	bigPath := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(bigPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range []result{
		run(t, environ, "runtime", "add", "-f", bigPath),
		runIn(t, t.TempDir(), environ, string(big), "runtime", "add", "-f", "-"),
	} {
		if r.Code != 2 || !strings.Contains(r.Stderr, "larger than the 1048576 byte (1 MiB) limit") {
			t.Errorf("10 MB manifest: exit %d\n%s", r.Code, r.Stderr)
		}
	}
	if after := runtimeTable(t, db); after != before {
		t.Errorf("the runtime table changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestRuntimeVerifyFileWithoutDatabase verifies a manifest with no database
// configured anywhere: the embedded server is not started.
func TestRuntimeVerifyFileWithoutDatabase(t *testing.T) {
	t.Parallel()
	r := run(t, env(t), "runtime", "verify", "-f", manifest(t, "good/seed.yaml"))
	if r.Code != 0 || strings.Contains(r.Stderr, "embedded") || r.Stderr != "" {
		t.Errorf("runtime verify -f without a database: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !regexp.MustCompile(`(?m)^Python\s+core\.sensor\.python\s+yes\s`).MatchString(r.Stdout) {
		t.Errorf("stdout:\n%s", r.Stdout)
	}
	r = runIn(t, t.TempDir(), env(t), "ref: test.sensor.gone\nname: Gone\nverification:\n  commands: [{binary: /nonexistent/gone}]\n", "runtime", "verify", "-f", "-")
	if r.Code != 3 || strings.Contains(r.Stderr, "embedded") || !regexp.MustCompile(`(?m)^Gone\s+test\.sensor\.gone\s+no\s+\S+\s+not found$`).MatchString(r.Stdout) {
		t.Errorf("runtime verify -f - with an unavailable runtime: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestRuntimeExportImport copies runtimes between databases through a pipe:
// list -o yaml | add -f - --update.
func TestRuntimeExportImport(t *testing.T) {
	t.Parallel()
	src, dst := dbtest.New(t), dbtest.New(t)
	srcEnv, dstEnv := dbEnv(t, src), dbEnv(t, dst)
	if r := run(t, srcEnv, "runtime", "add", "-f", manifest(t, "good/multidoc.yaml")); r.Code != 0 {
		t.Fatalf("add: exit %d\n%s", r.Code, r.Stderr)
	}
	export := run(t, srcEnv, "runtime", "list", "-o", "yaml")
	if export.Code != 0 {
		t.Fatalf("export: exit %d\n%s", export.Code, export.Stderr)
	}
	r := runIn(t, t.TempDir(), dstEnv, export.Stdout, "runtime", "add", "-f", "-", "--update", "-o", "name")
	if r.Code != 0 || strings.Count(r.Stdout, "\n") != 9 {
		t.Fatalf("import: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if again := run(t, dstEnv, "runtime", "list", "-o", "yaml"); again.Stdout != export.Stdout {
		t.Errorf("the copy differs\n--- source\n%s\n--- copy\n%s", export.Stdout, again.Stdout)
	}
	r = run(t, dstEnv, "runtime", "remove", "test.sensor.go", "test.sensor.nope")
	if r.Code != 2 || !strings.Contains(r.Stderr, "test.sensor.nope not found") {
		t.Errorf("remove with an unknown ref: exit %d\n%s", r.Code, r.Stderr)
	}
	r = run(t, dstEnv, "runtime", "remove", "test.sensor.go", "test.sensor.deno")
	if r.Code != 0 || r.Stdout != "runtime test.sensor.deno removed\nruntime test.sensor.go removed\n" {
		t.Errorf("remove: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
