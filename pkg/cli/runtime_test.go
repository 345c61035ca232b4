package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/config"
	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/detect"
	"github.com/attune-automation/attunectl/pkg/output"
	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/attune-automation/attunectl/pkg/sandbox"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// rtNow is the fixed clock of the runtime golden files; rtUpdated is the
// updated time the golden tests give every row (so UPDATED is "1h ago").
var (
	rtNow     = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	rtUpdated = rtNow.Add(-time.Hour)
)

const (
	manifestsDir = "../../testdata/manifests"
	rtGoldenDir  = "../../testdata/golden/runtime"
	rtFakebinDir = "../../testdata/fakebin"
)

// stableVerifyResult is every test App's VerifyResultHook. Verification
// results are printed with durations, resolved paths, and which of two
// runtimes asking for the same command ran it (Cached): make them the same
// on every run. No test of this package needs the real values in the
// printed output.
func stableVerifyResult(res *detect.Result) {
	res.Duration = 0
	if res.RunAs != nil {
		// Whoever runs the tests, the goldens show the root of CI.
		res.RunAs = &sandbox.User{Name: "root", UID: 0, GID: 0, Home: "/root"}
	}
	for i := range res.Runtimes {
		rr := &res.Runtimes[i]
		rr.Duration = 0
		for j := range rr.Commands {
			c := &rr.Commands[j]
			c.Duration, c.Cached = 0, false
			if k := strings.Index(c.Path, "/fakebin"); k >= 0 {
				c.Path = "/fakebin/" + filepath.Base(c.Path)
			}
		}
	}
}

// rtFakePATH copies testdata/fakebin into a directory named fakebin* (mode
// 0755 whatever git kept) to be used as the only PATH entry, so results do
// not depend on what the host has installed.
func rtFakePATH(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(t.TempDir(), "fakebin")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(rtFakebinDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(rtFakebinDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rtRun is one in-process invocation of attunectl.
type rtRun struct {
	Stdout, Stderr string
	Code           int
}

// rtEnv is the environment of an in-process run: the database (when db is
// not nil), PATH and extra variables. Nothing comes from the test process.
func rtEnv(db *dbtest.DB, path string, extra ...string) []string {
	// Commands from the database run as the test process itself: as root,
	// sensor.run_as root on purpose; otherwise that user.
	env := []string{"PATH=" + path, "HOME=/nonexistent"}
	if os.Geteuid() == 0 {
		env = append(env, "ATTUNE__SENSOR__RUN_AS=root")
	}
	if db != nil {
		env = append(env, "ATTUNE__DATABASE__URL="+db.URL)
	}
	return append(env, extra...)
}

// rtExec runs attunectl in process with environ and stdin, on the golden clock.
func rtExec(t *testing.T, environ []string, stdin string, args ...string) rtRun {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &App{In: strings.NewReader(stdin), Out: &out, Err: &errOut, Environ: environ, Now: func() time.Time { return rtNow }, VerifyResultHook: stableVerifyResult}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := Execute(ctx, app, args)
	return rtRun{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// rtDump is the whole runtime table as JSON, to prove a command changed nothing.
func rtDump(t *testing.T, db *dbtest.DB) string {
	t.Helper()
	var s string
	if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(json_agg(r ORDER BY id)::text, '[]') FROM runtime r`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func rtGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testsupport.Golden(t, filepath.Join(rtGoldenDir, name), got, *update, "go test ./pkg/cli -run 'TestRuntime.*Golden' -update")
}

// badManifest is one file of the corpus with the substring its error must hold.
type badManifest struct {
	name, path, want string
	// stdin, when set, is passed with -f - instead of the path.
	stdin string
}

// badCorpus lists testdata/manifests/bad plus the generated oversize cases
// (written to dir): just over 1 MiB of otherwise valid YAML, and 10 MB.
func badCorpus(t *testing.T, dir string) []badManifest {
	t.Helper()
	var files []string
	for _, glob := range []string{"*.yaml", "*.json"} {
		m, err := filepath.Glob(filepath.Join(manifestsDir, "bad", glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	if len(files) < 25 {
		t.Fatalf("only %d bad manifests in %s/bad", len(files), manifestsDir)
	}
	var corpus []badManifest
	for _, f := range files {
		base := strings.TrimSuffix(f, filepath.Ext(f))
		want, err := os.ReadFile(base + ".err")
		if err != nil {
			t.Fatalf("%s has no .err file: %v", f, err)
		}
		first, _, _ := strings.Cut(string(want), "\n")
		corpus = append(corpus, badManifest{name: filepath.Base(f), path: f, want: strings.TrimSpace(first)})
	}
	const tooBig = "larger than the 1048576 byte (1 MiB) limit"
	var b strings.Builder
	for i := 0; b.Len() <= runtimes.MaxManifestSize; i++ {
		b.WriteString("- ref: test.sensor.r" + strings.Repeat("x", 4) + string(rune('a'+i%26)) + "\n  name: R\n  verification: {always_available: true}\n")
	}
	overMiB := filepath.Join(dir, "over-1mib.yaml")
	tenMB := filepath.Join(dir, "ten-mb.yaml")
	big := bytes.Repeat([]byte("# padding to ten megabytes, never parsed\n"), 10<<20/41+1)
	if err := os.WriteFile(overMiB, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tenMB, big, 0o644); err != nil {
		t.Fatal(err)
	}
	return append(corpus,
		badManifest{name: "generated-over-1mib", path: overMiB, want: tooBig},
		badManifest{name: "generated-10mb", path: tenMB, want: tooBig},
		badManifest{name: "generated-10mb-stdin", stdin: string(big), want: tooBig},
	)
}

// TestRuntimeAddBadCorpus runs every broken manifest through
// `runtime add -f` against a migrated database: exit 2, the expected
// message, and the runtime table byte for byte unchanged.
func TestRuntimeAddBadCorpus(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	before := rtDump(t, db)
	env := rtEnv(db, "/nonexistent")
	for _, m := range badCorpus(t, t.TempDir()) {
		t.Run(m.name, func(t *testing.T) {
			args := []string{"runtime", "add", "-f", m.path}
			if m.path == "" {
				args = []string{"runtime", "add", "-f", "-"}
			}
			r := rtExec(t, env, m.stdin, args...)
			if r.Code != ExitUsage {
				t.Errorf("exit %d, want %d\nstderr: %s", r.Code, ExitUsage, r.Stderr)
			}
			if !strings.Contains(r.Stderr, m.want) {
				t.Errorf("stderr does not contain %q:\n%s", m.want, r.Stderr)
			}
			if r.Stdout != "" {
				t.Errorf("stdout should be empty: %q", r.Stdout)
			}
			if after := rtDump(t, db); after != before {
				t.Errorf("the runtime table changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestRuntimeAddGoodManifests adds every good manifest; the seed's refs
// exist already (the migration seeds them), so those need --update.
func TestRuntimeAddGoodManifests(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := rtEnv(db, "/nonexistent")
	files, _ := filepath.Glob(filepath.Join(manifestsDir, "good", "*"))
	if len(files) < 5 {
		t.Fatalf("only %d good manifests", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rts, err := runtimes.ParseManifestFile(f, data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		seed := strings.HasPrefix(filepath.Base(f), "seed.")
		before := rtDump(t, db)
		r := rtExec(t, env, "", "runtime", "add", "-f", f)
		if seed {
			// Existing refs without --update: exit 2, naming them and --update.
			if r.Code != ExitUsage || !strings.Contains(r.Stderr, "core.sensor.builtin, core.sensor.native") || !strings.Contains(r.Stderr, "pass --update") {
				t.Errorf("%s without --update: exit %d\n%s", f, r.Code, r.Stderr)
			}
			if rtDump(t, db) != before {
				t.Errorf("%s without --update changed the table", f)
			}
			r = rtExec(t, env, "", "runtime", "add", "-f", f, "--update")
		}
		if r.Code != 0 {
			t.Fatalf("%s: exit %d\n%s", f, r.Code, r.Stderr)
		}
		for _, rt := range rts {
			verb := "created"
			if seed {
				verb = "updated"
			}
			if line := "runtime " + rt.Ref + " " + verb + "\n"; !strings.Contains(r.Stdout, line) {
				t.Errorf("%s: stdout lacks %q:\n%s", f, line, r.Stdout)
			}
		}
		got, err := runtimes.List(t.Context(), mustOpenDB(t, db), runtimes.Filter{Refs: runtimes.Refs(rts)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(rts) {
			t.Errorf("%s: %d runtimes in the table, want %d", f, len(got), len(rts))
		}
	}

	// The same file again: its refs exist now.
	before := rtDump(t, db)
	r := rtExec(t, env, "", "runtime", "add", "-f", filepath.Join(manifestsDir, "good", "single.yaml"))
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, "runtime test.sensor.ruby already exists: pass --update to replace it") {
		t.Errorf("adding an existing ref: exit %d\n%s", r.Code, r.Stderr)
	}
	// A file with one new ref and one existing: all or none.
	mixed := "- ref: test.sensor.brandnew\n  name: New\n  verification: {always_available: true}\n- ref: core.sensor.python\n  name: Python\n  verification: {always_available: true}\n"
	r = rtExec(t, env, mixed, "runtime", "add", "-f", "-")
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, "runtime core.sensor.python already exists") {
		t.Errorf("mixed new and existing: exit %d\n%s", r.Code, r.Stderr)
	}
	if rtDump(t, db) != before {
		t.Error("refused adds changed the table")
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestRuntimeAddFlags builds runtimes from flags: every problem names its
// flag, the exit status is 2 and nothing is written.
func TestRuntimeAddFlags(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := rtEnv(db, "/nonexistent")
	pool := mustOpenDB(t, db)

	r := rtExec(t, env, "", "runtime", "add", "--ref", "acme.sensor.python", "--name", "Python (acme)", "--pack-ref", "acme",
		"--alias", "py3", "--alias", "cpython", "--description", "Acme's Python",
		"--command", "python3 --version", "--command", `python -c 'import sys; print(sys.version)'`, "--pattern", `Python 3\.`)
	if r.Code != 0 || r.Stdout != "runtime acme.sensor.python created\n" {
		t.Fatalf("add from flags: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	got, err := runtimes.List(t.Context(), pool, runtimes.Filter{Refs: []string{"acme.sensor.python"}})
	if err != nil || len(got) != 1 {
		t.Fatalf("reading it back: %v %v", got, err)
	}
	want := runtimes.Runtime{Ref: "acme.sensor.python", Name: "Python (acme)", Type: "sensor", PackRef: "acme", Description: "Acme's Python",
		Aliases: []string{"py3", "cpython"}, Verification: &runtimes.Verification{Commands: []runtimes.Command{
			{Binary: "python3", Args: []string{"--version"}, Pattern: `Python 3\.`, Priority: runtimes.Ptr(1)},
			{Binary: "python", Args: []string{"-c", "import sys; print(sys.version)"}, Pattern: `Python 3\.`, Priority: runtimes.Ptr(2)},
		}}}
	if a, b := manifestOf(t, got[0]), manifestOf(t, want); a != b {
		t.Errorf("stored runtime:\n%s\nwant:\n%s", a, b)
	}

	// Per-command values pair with the commands in order; --update replaces.
	r = rtExec(t, env, "", "runtime", "add", "--update", "--ref", "acme.sensor.python", "--name", "Python",
		"--command", "python3 --version", "--command", "/usr/bin/python3 -V",
		"--pattern", `^Python 3\.`, "--pattern", "", "--exit-code", "0,0", "--priority", "10", "--priority", "5")
	if r.Code != 0 || r.Stdout != "runtime acme.sensor.python updated\n" {
		t.Fatalf("--update from flags: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	got, _ = runtimes.List(t.Context(), pool, runtimes.Filter{Refs: []string{"acme.sensor.python"}})
	want = runtimes.Runtime{Ref: "acme.sensor.python", Name: "Python", Type: "sensor", Verification: &runtimes.Verification{Commands: []runtimes.Command{
		{Binary: "python3", Args: []string{"--version"}, Pattern: `^Python 3\.`, ExitCode: runtimes.Ptr(0), Priority: runtimes.Ptr(10)},
		{Binary: "/usr/bin/python3", Args: []string{"-V"}, ExitCode: runtimes.Ptr(0), Priority: runtimes.Ptr(5)},
	}}}
	if a, b := manifestOf(t, got[0]), manifestOf(t, want); a != b {
		t.Errorf("updated runtime:\n%s\nwant:\n%s", a, b)
	}

	r = rtExec(t, env, "", "runtime", "add", "--ref", "acme.sensor.builtin", "--name", "Acme Built-in", "--always-available", "-o", "name")
	if r.Code != 0 || r.Stdout != "acme.sensor.builtin\n" {
		t.Errorf("--always-available: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "add", "--ref", "acme.action.perl", "--name", "Perl", "--type", "action", "-o", "json")
	if r.Code != 0 || r.Stdout != "{\n  \"dry_run\": false,\n  \"created\": [\n    \"acme.action.perl\"\n  ],\n  \"updated\": []\n}\n" {
		t.Errorf("an action runtime without verification: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	before := rtDump(t, db)
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"nothing", nil, []string{"nothing to add: give --ref, --name and --command"}},
		{"semicolon", []string{"--ref", "a.b", "--name", "X", "--command", "python3 --version; rm -rf /"},
			[]string{`--command "python3 --version; rm -rf /": contains ';', which only a shell understands`}},
		{"pipe", []string{"--ref", "a.b", "--name", "X", "--command", "node -v | grep v20"}, []string{`contains '|'`}},
		{"subshell", []string{"--ref", "a.b", "--name", "X", "--command", "$(which python3) --version"}, []string{`contains '$'`}},
		{"backtick", []string{"--ref", "a.b", "--name", "X", "--command", "`which python3`"}, []string{"contains '`'"}},
		{"redirect", []string{"--ref", "a.b", "--name", "X", "--command", "python3 --version 2>&1"}, []string{`contains '>'`}},
		{"newline", []string{"--ref", "a.b", "--name", "X", "--command", "python3\n--version"}, []string{"contains a newline"}},
		{"unterminated quote", []string{"--ref", "a.b", "--name", "X", "--command", `python3 -c 'print(1)`}, []string{"unterminated ' quote"}},
		{"empty command", []string{"--ref", "a.b", "--name", "X", "--command", "  "}, []string{"empty command"}},
		{"relative binary", []string{"--ref", "a.b", "--name", "X", "--command", "./python --version"},
			[]string{`--command "./python --version": relative path "./python"`}},
		{"quoted shell binary", []string{"--ref", "a.b", "--name", "X", "--command", `"sh -c" python3`},
			[]string{`--command "\"sh -c\" python3": "sh -c" contains whitespace`}},
		{"bad ref and name", []string{"--ref", "Acme.Sensor.X", "--name", " ", "--always-available"},
			[]string{"invalid runtime: 2 problems:", `--ref: "Acme.Sensor.X" must be lower case: use acme.sensor.x`, "--name: must not be blank"}},
		{"every problem at once", []string{"--ref", "Acme.X", "--command", "python3 --version; rm", "--command", "./x", "--pattern", "["},
			[]string{"invalid runtime: 5 problems:", `--command "python3 --version; rm": contains ';'`, `--ref: "Acme.X" must be lower case`,
				"--name: required", `--command "./x": relative path "./x"`, "--pattern: error parsing regexp: missing closing ]"}},
		{"bad type", []string{"--ref", "a.b", "--name", "X", "--type", "sensors", "--always-available"}, []string{`--type: "sensors" is not a runtime type`}},
		{"bad pattern", []string{"--ref", "a.b", "--name", "X", "--command", "python3 --version", "--command", "python --version", "--pattern", "(?=Python)"},
			[]string{"invalid runtime: --pattern: error parsing regexp", "without lookaround"}},
		{"exit code", []string{"--ref", "a.b", "--name", "X", "--command", "python3 --version", "--exit-code", "300"}, []string{"--exit-code: 300 is out of range"}},
		{"pattern count", []string{"--ref", "a.b", "--name", "X", "--command", "a", "--command", "b", "--command", "c", "--pattern", "x", "--pattern", "y"},
			[]string{"--pattern: given 2 times for 3 --command"}},
		{"pattern without command", []string{"--ref", "a.b", "--name", "X", "--always-available", "--pattern", "x"}, []string{"--pattern: applies to --command"}},
		{"sensor without check", []string{"--ref", "a.b", "--name", "X"}, []string{"--command: a sensor runtime needs at least one --command"}},
		{"bad alias", []string{"--ref", "a.b", "--name", "X", "--always-available", "--alias", " "}, []string{`--alias " ": must not be blank`}},
		{"file and flags", []string{"-f", "x.yaml", "--ref", "a.b"}, []string{"--filename and --ref cannot be combined (see `attunectl runtime add --help`)"}},
		{"always and command", []string{"--ref", "a.b", "--name", "X", "--always-available", "--command", "python3"}, []string{"--always-available and --command cannot be combined"}},
		{"timeout without dry run", []string{"--ref", "a.b", "--name", "X", "--always-available", "--timeout", "1s"}, []string{"--timeout applies to --dry-run only"}},
		{"bad output", []string{"--ref", "a.b", "--name", "X", "--always-available", "-o", "xml"}, []string{`unknown output format "xml"`}},
		{"missing file", []string{"-f", "/nonexistent/runtimes.yaml"}, []string{"reading manifest: open /nonexistent/runtimes.yaml: no such file or directory: check the path given to -f"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rtExec(t, env, "", append([]string{"runtime", "add"}, c.args...)...)
			if r.Code != ExitUsage {
				t.Errorf("exit %d, want 2\n%s", r.Code, r.Stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.Stderr)
				}
			}
			if after := rtDump(t, db); after != before {
				t.Error("the runtime table changed")
			}
		})
	}
}

// manifestOf is a runtime as manifest YAML, for comparisons.
func manifestOf(t *testing.T, r runtimes.Runtime) string {
	t.Helper()
	b, err := runtimes.Marshal([]runtimes.Runtime{r}, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSplitCommandLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "python3 --version", want: []string{"python3", "--version"}},
		{in: "  java\t-version  ", want: []string{"java", "-version"}},
		{in: `python3 -c 'import sys; print(sys.version)'`, want: []string{"python3", "-c", "import sys; print(sys.version)"}},
		{in: `node -e "console.log(\"v\" + process.version)"`, want: []string{"node", "-e", `console.log("v" + process.version)`}},
		{in: `a ''`, want: []string{"a", ""}},
		{in: `a b'c d'e`, want: []string{"a", "bc de"}},
		{in: `pwsh -Command '$PSVersionTable'`, want: []string{"pwsh", "-Command", "$PSVersionTable"}},
		{in: `a "\\"`, want: []string{"a", `\`}},
		{in: "", err: "empty command"},
		{in: "a; b", err: "contains ';'"},
		{in: "a && b", err: "contains '&'"},
		{in: `a \; b`, err: `contains '\\'`},
		{in: "ls *", err: "contains '*'"},
		{in: "a # comment", err: "contains '#'"},
		{in: `a "b`, err: `unterminated " quote`},
		{in: "a\x00b", err: "control character"},
		{in: "a\r", err: "newline"},
	} {
		got, err := splitCommandLine(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("splitCommandLine(%q) = %q, %v; want error %q", c.in, got, err, c.err)
		case c.err == "" && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("splitCommandLine(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// rtFixture adds the good manifests single.yaml and multidoc.yaml to the
// seeded database and pins every updated time to rtUpdated.
func rtFixture(t *testing.T) *dbtest.DB {
	t.Helper()
	db := dbtest.New(t)
	env := rtEnv(db, "/nonexistent")
	for _, f := range []string{"single.yaml", "multidoc.yaml"} {
		if r := rtExec(t, env, "", "runtime", "add", "-f", filepath.Join(manifestsDir, "good", f)); r.Code != 0 {
			t.Fatalf("adding %s: exit %d\n%s", f, r.Code, r.Stderr)
		}
	}
	if _, err := db.Pool.Exec(t.Context(), "UPDATE runtime SET updated = $1", rtUpdated); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestRuntimeListGolden prints the seeded and added runtimes in every format.
func TestRuntimeListGolden(t *testing.T) {
	t.Parallel()
	db := rtFixture(t)
	env := rtEnv(db, "/nonexistent")
	for _, f := range []string{"table", "wide", "json", "yaml", "name"} {
		r := rtExec(t, env, "", "runtime", "list", "-o", f)
		if r.Code != 0 || r.Stderr != "" {
			t.Fatalf("list -o %s: exit %d\n%s", f, r.Code, r.Stderr)
		}
		rtGolden(t, "list-"+f+".golden", []byte(r.Stdout))
	}
	r := rtExec(t, env, "", "runtime", "list", "--type", "action", "-o", "name")
	if r.Code != 0 || r.Stdout != "test.action.perl\n" {
		t.Errorf("--type action: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "list", "core.sensor.python", "CORE.SENSOR.SHELL", "-o", "name")
	if r.Code != 0 || r.Stdout != "core.sensor.python\ncore.sensor.shell\n" {
		t.Errorf("list REF...: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "list", "core.sensor.python", "core.sensor.cobol")
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, "runtime core.sensor.cobol not found in schema attune") {
		t.Errorf("list unknown REF: exit %d\n%s", r.Code, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "list", "--type", "sensors")
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, `--type "sensors": use sensor or action`) {
		t.Errorf("--type sensors: exit %d\n%s", r.Code, r.Stderr)
	}
	// An empty listing is not an error.
	if _, err := db.Pool.Exec(t.Context(), "DELETE FROM runtime"); err != nil {
		t.Fatal(err)
	}
	r = rtExec(t, env, "", "runtime", "list")
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "No runtimes found.\n" {
		t.Errorf("empty list: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "list", "-o", "yaml")
	if r.Code != 0 || r.Stdout != "[]\n" {
		t.Errorf("empty list -o yaml: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
}

// TestRuntimeListRoundTrip exports with `list -o yaml|json` from one
// database and imports with `add -f -` into another: the listings match.
func TestRuntimeListRoundTrip(t *testing.T) {
	t.Parallel()
	src := rtFixture(t)
	// Attune's own keys in distributions are not part of a manifest.
	if _, err := src.Pool.Exec(t.Context(), `UPDATE runtime SET distributions = distributions || '{"linux": {"apt": "python3"}}' WHERE ref = 'core.sensor.python'`); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			export := rtExec(t, rtEnv(src, "/nonexistent"), "", "runtime", "list", "-o", format)
			if export.Code != 0 {
				t.Fatalf("export: exit %d\n%s", export.Code, export.Stderr)
			}
			dst := dbtest.New(t)
			denv := rtEnv(dst, "/nonexistent")
			r := rtExec(t, denv, export.Stdout, "runtime", "add", "-f", "-")
			if r.Code != ExitUsage || !strings.Contains(r.Stderr, "pass --update") {
				t.Errorf("import over the seeded runtimes without --update: exit %d\n%s", r.Code, r.Stderr)
			}
			r = rtExec(t, denv, export.Stdout, "runtime", "add", "-f", "-", "--update")
			if r.Code != 0 {
				t.Fatalf("import: exit %d\n%s", r.Code, r.Stderr)
			}
			again := rtExec(t, denv, "", "runtime", "list", "-o", format)
			if again.Stdout != export.Stdout {
				t.Errorf("listings differ after the round trip\n--- source\n%s\n--- copy\n%s", export.Stdout, again.Stdout)
			}
		})
	}
}

// rtVerifyFixture is a database whose sensor runtimes cover every outcome
// against testdata/fakebin: always, first command, fallback, stderr output,
// not found, wrong exit code, pattern mismatch, no metadata.
func rtVerifyFixture(t *testing.T) *dbtest.DB {
	t.Helper()
	db := rtFixture(t)
	extra := `
- ref: test.sensor.fallback
  name: Fallback
  verification:
    commands:
      - {binary: python, args: [--version], pattern: 'Python 3\.', priority: 1}
      - {binary: python3, args: [--version], pattern: 'Python 3\.', priority: 2}
- ref: test.sensor.missing
  name: Missing
  verification:
    commands: [{binary: attunectl-no-such-binary, args: [--version]}]
- ref: test.sensor.failing
  name: Failing
  verification:
    commands: [{binary: fail, args: [--version]}]
- ref: test.sensor.python2
  name: Python 2
  verification:
    commands: [{binary: python, args: [--version], pattern: '^Python 3\.'}]
- ref: test.sensor.unchecked
  name: Unchecked
`
	if r := rtExec(t, rtEnv(db, "/nonexistent"), extra, "runtime", "add", "-f", "-"); r.Code != 0 {
		t.Fatalf("adding the verify fixture: exit %d\n%s", r.Code, r.Stderr)
	}
	return db
}

// TestRuntimeVerifyGolden verifies the database's sensor runtimes against
// the fake binaries and prints every format.
func TestRuntimeVerifyGolden(t *testing.T) {
	t.Parallel()
	db := rtVerifyFixture(t)
	env := rtEnv(db, rtFakePATH(t))
	for _, f := range []string{"table", "wide", "json", "yaml"} {
		r := rtExec(t, env, "", "runtime", "verify", "-o", f)
		if r.Code != ExitCondition {
			t.Errorf("verify -o %s: exit %d, want 3\n%s", f, r.Code, r.Stderr)
		}
		wantErr := "Error: 7 of 14 runtimes not available on this host: test.sensor.deno, test.sensor.failing, test.sensor.go, test.sensor.missing, test.sensor.python2, test.sensor.ruby, test.sensor.unchecked\n"
		if r.Stderr != wantErr {
			t.Errorf("verify -o %s stderr:\n%s\nwant:\n%s", f, r.Stderr, wantErr)
		}
		rtGolden(t, "verify-"+f+".golden", []byte(r.Stdout))
	}

	// Colour: the same table, AVAILABLE painted.
	var rts []runtimes.Runtime
	for _, ref := range []string{"core.sensor.python", "test.sensor.missing"} {
		got, err := runtimes.List(t.Context(), mustOpenDB(t, db), runtimes.Filter{Refs: []string{ref}})
		if err != nil {
			t.Fatal(err)
		}
		rts = append(rts, got...)
	}
	app := &App{Environ: env, Config: config.Default(), VerifyResultHook: stableVerifyResult}
	if os.Geteuid() == 0 {
		app.Config.Sensor.RunAs = "root"
	}
	res := verifyRuntimes(t.Context(), app, rts, 0)
	for _, f := range []output.Format{output.Table, output.Wide} {
		var buf bytes.Buffer
		if err := printVerify(&buf, res, f, output.Palette{On: true}); err != nil {
			t.Fatal(err)
		}
		rtGolden(t, "verify-"+string(f)+"-color.golden", buf.Bytes())
	}

	// Requested refs that are all available: exit 0, whatever their type.
	r := rtExec(t, env, "", "runtime", "verify", "core.sensor.python", "core.sensor.nodejs", "test.sensor.fallback", "test.sensor.java", "-o", "json")
	if r.Code != 0 || r.Stderr != "" {
		t.Errorf("verify available refs: exit %d\n%s", r.Code, r.Stderr)
	}
	var got detect.Result
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatal(err)
	}
	if want := []string{"fallback", "java", "node.js", "python"}; !slices.Equal(got.Available, want) || got.Source != detect.SourceDatabase {
		t.Errorf("available %v from %s, want %v from the database", got.Available, got.Source, want)
	}
	if got.Versions["python"] != "3.12.1" || got.Versions["java"] != "21.0.2" {
		t.Errorf("versions %v", got.Versions)
	}

	r = rtExec(t, env, "", "runtime", "verify", "core.sensor.python", "core.sensor.cobol", "test.sensor.nope")
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, "runtime core.sensor.cobol, test.sensor.nope not found in schema attune") || r.Stdout != "" {
		t.Errorf("verify unknown refs: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// mustOpenDB opens db as commands do (schema introspected), closed at cleanup.
func mustOpenDB(t *testing.T, db *dbtest.DB) *database.DB {
	t.Helper()
	d, err := database.Open(context.Background(), database.Options{URL: db.URL, Schema: dbtest.Schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestRuntimeVerifyOptions covers --timeout, the configuration's limits
// and the note about detection overrides.
func TestRuntimeVerifyOptions(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	path := rtFakePATH(t)
	env := rtEnv(db, path)

	// The environment variable and the config list that `sensor run`
	// would use instead of detection are named on stderr.
	r := rtExec(t, append(env, "ATTUNE_SENSOR_RUNTIMES= Python,shell "), "", "runtime", "verify")
	if r.Code != 0 || !strings.Contains(r.Stderr, "note: ATTUNE_SENSOR_RUNTIMES is set (python, shell): `attunectl sensor run` would register these runtimes without detection") {
		t.Errorf("with ATTUNE_SENSOR_RUNTIMES: exit %d\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "Node.js") {
		t.Errorf("verify still runs detection:\n%s", r.Stdout)
	}
	r = rtExec(t, append(env, "ATTUNE__SENSOR__CAPABILITIES__RUNTIMES=python"), "", "runtime", "verify")
	if r.Code != 0 || !strings.Contains(r.Stderr, "note: sensor.capabilities.runtimes is set (python)") {
		t.Errorf("with sensor.capabilities.runtimes: exit %d\n%s", r.Code, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "verify")
	if r.Code != 0 || r.Stderr != "" {
		t.Errorf("without overrides: exit %d\n%s", r.Code, r.Stderr)
	}

	// allowed_binaries from the configuration.
	r = rtExec(t, append(env, "ATTUNE__SENSOR__VERIFICATION__ALLOWED_BINARIES=python3"), "", "runtime", "verify", "core.sensor.nodejs", "core.sensor.python")
	if r.Code != ExitCondition || !strings.Contains(r.Stdout, "not in allowed_binaries") {
		t.Errorf("allowed_binaries: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// --timeout overrides sensor.verification.timeout (here 60s).
	sleepy := "ref: test.sensor.sleepy\nname: Sleepy\nverification:\n  commands: [{binary: sleeper, args: ['30']}]\n"
	start := time.Now()
	r = rtExec(t, append(rtEnv(nil, path+":/usr/bin:/bin"), "ATTUNE__SENSOR__VERIFICATION__TIMEOUT=60"), sleepy, "runtime", "verify", "-f", "-", "--timeout", "300ms")
	if took := time.Since(start); r.Code != ExitCondition || !strings.Contains(r.Stdout, "timed out after 300ms") || took > 10*time.Second {
		t.Errorf("--timeout 300ms: exit %d after %s\n%s%s", r.Code, took, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "verify", "--timeout", "-1s")
	if r.Code != ExitUsage {
		t.Errorf("--timeout -1s: exit %d", r.Code)
	}

	// No sensor runtime at all: nothing is unavailable.
	if _, err := db.Pool.Exec(t.Context(), "DELETE FROM runtime"); err != nil {
		t.Fatal(err)
	}
	r = rtExec(t, env, "", "runtime", "verify")
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "No sensor runtimes found.\n" {
		t.Errorf("verify without runtimes: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
}

// TestRuntimeVerifyFile verifies a manifest without any database configured:
// the embedded server is not started.
func TestRuntimeVerifyFile(t *testing.T) {
	t.Parallel()
	env := rtEnv(nil, rtFakePATH(t))
	seed := filepath.Join(manifestsDir, "good", "seed.yaml")
	r := rtExec(t, env, "", "runtime", "verify", "-f", seed)
	if r.Code != 0 || r.Stderr != "" || strings.Contains(r.Stderr, "embedded") {
		t.Errorf("verify -f seed.yaml: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	rtGolden(t, "verify-file-seed.golden", []byte(r.Stdout))

	r = rtExec(t, env, "", "runtime", "verify", "-f", seed, "core.sensor.python", "-o", "json")
	var got detect.Result
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || r.Code != 0 {
		t.Fatalf("verify -f REF -o json: exit %d, %v\n%s", r.Code, err, r.Stderr)
	}
	if got.Source != detect.SourceFile || !slices.Equal(got.Available, []string{"python"}) {
		t.Errorf("verify -f REF: %+v", got)
	}
	r = rtExec(t, env, "", "runtime", "verify", "-f", seed, "core.sensor.cobol")
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, "runtime core.sensor.cobol not found in "+seed) {
		t.Errorf("verify -f unknown REF: exit %d\n%s", r.Code, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "verify", "-f", filepath.Join(manifestsDir, "bad", "sh-c-binary.yaml"))
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, "contains whitespace") {
		t.Errorf("verify -f a bad manifest: exit %d\n%s", r.Code, r.Stderr)
	}
}

// TestRuntimeAddDryRun validates and verifies without writing.
func TestRuntimeAddDryRun(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := rtEnv(db, rtFakePATH(t))
	before := rtDump(t, db)
	seed := filepath.Join(manifestsDir, "good", "seed.yaml")

	r := rtExec(t, env, "", "runtime", "add", "-f", seed, "--dry-run")
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, "pass --update") {
		t.Errorf("dry run over existing refs: exit %d\n%s", r.Code, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "add", "-f", seed, "--dry-run", "--update")
	if r.Code != 0 || r.Stderr != "dry run: would update core.sensor.builtin, core.sensor.native, core.sensor.nodejs, core.sensor.python, core.sensor.shell; nothing was written\n" {
		t.Errorf("dry run --update: exit %d\n%s", r.Code, r.Stderr)
	}
	rtGolden(t, "add-dry-run.golden", []byte(r.Stdout))

	r = rtExec(t, env, "", "runtime", "add", "--dry-run", "--ref", "test.sensor.missing", "--name", "Missing", "--command", "attunectl-no-such-binary --version", "--timeout", "1s", "-o", "json")
	var rep addReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || r.Code != 0 {
		t.Fatalf("dry run -o json: exit %d %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if !rep.DryRun || !slices.Equal(rep.Created, []string{"test.sensor.missing"}) || rep.Verification == nil ||
		rep.Verification.Runtimes[0].Reason != "not found on PATH" {
		t.Errorf("dry run report: %+v", rep)
	}
	if rtDump(t, db) != before {
		t.Error("a dry run changed the runtime table")
	}
}

// TestRuntimeRemove removes all or none.
func TestRuntimeRemove(t *testing.T) {
	t.Parallel()
	db := rtFixture(t)
	env := rtEnv(db, "/nonexistent")
	before := rtDump(t, db)
	r := rtExec(t, env, "", "runtime", "remove", "test.sensor.ruby", "test.sensor.cobol", "test.sensor.nope")
	if r.Code != ExitUsage || !strings.Contains(r.Stderr, "runtime test.sensor.cobol, test.sensor.nope not found") || !strings.Contains(r.Stderr, "nothing was removed") {
		t.Errorf("remove with unknown refs: exit %d\n%s", r.Code, r.Stderr)
	}
	if rtDump(t, db) != before {
		t.Error("a refused remove changed the table")
	}
	r = rtExec(t, env, "", "runtime", "remove", "test.sensor.ruby", "test.sensor.java")
	if r.Code != 0 || r.Stdout != "runtime test.sensor.java removed\nruntime test.sensor.ruby removed\n" {
		t.Errorf("remove: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = rtExec(t, env, "", "runtime", "list", "test.sensor.ruby")
	if r.Code != ExitUsage {
		t.Errorf("a removed runtime is still listed: exit %d\n%s", r.Code, r.Stdout)
	}
	r = rtExec(t, env, "", "runtime", "remove")
	if r.Code != ExitUsage {
		t.Errorf("remove without refs: exit %d\n%s", r.Code, r.Stderr)
	}
}

// TestRuntimeCompletion completes refs from the database, from -f, and
// nothing (quickly) when the database cannot be reached.
func TestRuntimeCompletion(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := rtEnv(db, "/nonexistent")
	r := rtExec(t, env, "", "__complete", "runtime", "remove", "core.sensor.python", "core.sensor.")
	want := "core.sensor.builtin\ncore.sensor.native\ncore.sensor.nodejs\ncore.sensor.shell\n:4\n"
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, want) {
		t.Errorf("completing refs: exit %d\n%s\nwant prefix\n%s", r.Code, r.Stdout, want)
	}
	r = rtExec(t, env, "", "__complete", "runtime", "verify", "-f", filepath.Join(manifestsDir, "good", "multidoc.yaml"), "test.sensor.")
	if !strings.HasPrefix(r.Stdout, "test.sensor.java\ntest.sensor.go\ntest.sensor.deno\n:4\n") {
		t.Errorf("completing refs of -f:\n%s", r.Stdout)
	}
	start := time.Now()
	r = rtExec(t, rtEnv(nil, "/nonexistent", "ATTUNE__DATABASE__URL=postgres://nobody@127.0.0.1:1/none?connect_timeout=30"), "", "__complete", "runtime", "remove", "")
	if !strings.HasPrefix(r.Stdout, ":4\n") || time.Since(start) > completionTimeout+3*time.Second {
		t.Errorf("completing without a database: after %s\n%s", time.Since(start), r.Stdout)
	}
}

// TestCommandLineReadsBack: the line runtime verify shows in VIA and
// COMMAND is read back by --command as the same argv.
func TestCommandLineReadsBack(t *testing.T) {
	for _, argv := range [][]string{
		{"python3", "--version"},
		{"node", "-e", "console.log(1); process.exit(0)"},
		{"sh", "-c", `it's "$HOME" \ *`},
		{"/opt/x y/bin", "", "a'b", "'", "é"},
	} {
		line := runtimes.CommandLine(argv[0], argv[1:])
		got, err := splitCommandLine(line)
		if err != nil || !slices.Equal(got, argv) {
			t.Errorf("%q shown as %s, read back as %q (%v)", argv, line, got, err)
		}
	}
}

// TestManifestReadStopsAtTheLimit: a manifest on stdin is read up to just
// past the 1 MiB limit and refused, never read whole.
func TestManifestReadStopsAtTheLimit(t *testing.T) {
	for _, args := range [][]string{{"runtime", "add", "-f", "-"}, {"sensor", "add", "-f", "-"}} {
		big := &countingReader{left: 10 << 20}
		app, _, errOut := testApp("")
		app.In, app.Environ = big, []string{}
		if code := Execute(t.Context(), app, args); code != ExitUsage || !strings.Contains(errOut.String(), "1 MiB") {
			t.Errorf("%v with 10 MB on stdin: exit %d\n%s", args, code, errOut)
		}
		if big.read > runtimes.MaxManifestSize+1 {
			t.Errorf("%v read %d bytes of a 10 MB stream; it should stop after the limit", args, big.read)
		}
	}
}

type countingReader struct{ left, read int }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left)
	for i := range p[:n] {
		p[i] = 'a'
	}
	r.left -= n
	r.read += n
	return n, nil
}
