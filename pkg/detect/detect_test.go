package detect

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/runtimes"
)

func TestParseList(t *testing.T) {
	for in, want := range map[string][]string{
		"":                               {},
		" , ,":                           {},
		"python":                         {"python"},
		" Shell, python ,,NODE.JS,shell": {"node.js", "python", "shell"},
		"Built-in Sensor":                {"built-in sensor"},
	} {
		if got := ParseList(in); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDetectPrecedence(t *testing.T) {
	ctx := context.Background()
	loads := 0
	load := func(context.Context) ([]runtimes.Runtime, error) {
		loads++
		return []runtimes.Runtime{always("core.sensor.shell", "Shell")}, nil
	}
	cases := []struct {
		name      string
		in        Input
		source    Source
		available []string
		loads     int
	}{
		{"env wins and skips the database", Input{EnvRuntimes: " Python,shell ,", ConfigRuntimes: []string{"node.js"}, Load: load}, SourceEnv, []string{"python", "shell"}, 0},
		{"config when env is unset", Input{ConfigRuntimes: []string{"Node.js", " "}, Load: load}, SourceConfig, []string{"node.js"}, 0},
		{"empty env falls through to config", Input{EnvRuntimes: " , ", ConfigRuntimes: []string{"python"}, Load: load}, SourceConfig, []string{"python"}, 0},
		{"database last", Input{Load: load}, SourceDatabase, []string{"shell"}, 1},
		{"empty config falls through", Input{ConfigRuntimes: []string{""}, Load: load}, SourceDatabase, []string{"shell"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loads = 0
			res, err := Detect(ctx, tc.in, Options{RunAs: selfRunAs()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != tc.source || !reflect.DeepEqual(res.Available, tc.available) || loads != tc.loads {
				t.Errorf("got source %s available %q loads %d; want %s %q %d", res.Source, res.Available, loads, tc.source, tc.available, tc.loads)
			}
		})
	}
	_, err := Detect(ctx, Input{Load: func(context.Context) ([]runtimes.Runtime, error) { return nil, errors.New("boom") }}, Options{RunAs: selfRunAs()})
	if err == nil || !strings.Contains(err.Error(), "detecting runtimes: boom") {
		t.Errorf("load error: %v", err)
	}
	if _, err := Detect(ctx, Input{}, Options{RunAs: selfRunAs()}); err == nil {
		t.Error("no source: want an error")
	}
}

// TestSeedWithFakeBinaries reproduces the seed's result on a PATH holding
// only the fake binaries of testdata/fakebin, plus a runtime whose binary
// does not exist.
func TestSeedWithFakeBinaries(t *testing.T) {
	dir := fakePATH(t)
	rts := append(loadSeed(t), rt("test.sensor.haskell", "Haskell", cmd("ghc", "--version")))
	res := Verify(context.Background(), rts, Options{RunAs: selfRunAs(), Environ: envWithPATH(dir)})
	want := []string{"built-in sensor", "native", "node.js", "python", "shell"}
	if !reflect.DeepEqual(res.Available, want) {
		t.Fatalf("available = %q, want %q\n%+v", res.Available, want, res.Runtimes)
	}
	if !reflect.DeepEqual(res.Versions, map[string]string{"node.js": "22.11.0", "python": "3.12.1"}) {
		t.Errorf("versions = %v", res.Versions)
	}
	byRef := map[string]RuntimeResult{}
	for _, r := range res.Runtimes {
		byRef[r.Ref] = r
	}
	if r := byRef["core.sensor.shell"]; !r.Available || r.Via != "always" || len(r.Commands) != 0 {
		t.Errorf("shell: %+v", r)
	}
	py := byRef["core.sensor.python"]
	if !py.Available || py.Via != "python3 --version" || len(py.Commands) != 1 {
		t.Errorf("python: %+v", py)
	}
	c := py.Commands[0]
	if c.Path != filepath.Join(dir, "python3") || !c.Ran || c.ExitCode != 0 || !c.Matched || c.Version != "3.12.1" || c.Reason != "" || c.Duration <= 0 {
		t.Errorf("python3 command: %+v", c)
	}
	hs := byRef["test.sensor.haskell"]
	if hs.Available || hs.Reason != "not found on PATH" || hs.Commands[0].Ran || hs.Commands[0].ExitCode != -1 {
		t.Errorf("haskell: %+v", hs)
	}
	if res.AllAvailable() || len(res.Unavailable()) != 1 {
		t.Error("AllAvailable/Unavailable wrong")
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"source":""`, `"available":["built-in sensor"`, `"duration_ms":`, `"expected_exit":0`, `"reason":"not found on PATH"`, `"via":"python3 --version"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s: %s", s, b)
		}
	}
}

// TestOutcomes checks every reason in words.
func TestOutcomes(t *testing.T) {
	dir := fakePATH(t)
	tmp := t.TempDir()
	notExec := filepath.Join(tmp, "notexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noShebang := filepath.Join(tmp, "noshebang")
	if err := os.WriteFile(noShebang, []byte("echo hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	exit3 := writeScript(t, tmp, "exit3", "echo 'tool 4.5'\nexit 3\n")
	kill := writeScript(t, tmp, "killself", "kill -SEGV $$\n")
	cases := []struct {
		name    string
		c       runtimes.Command
		ok      bool
		reason  string
		version string
	}{
		{"success", runtimes.Command{Binary: "node", Args: []string{"--version"}, Pattern: `v\d+\.\d+\.\d+`}, true, "", "22.11.0"},
		{"no pattern", cmd("node", "--version"), true, "", "22.11.0"},
		{"pattern in stderr", runtimes.Command{Binary: "java", Args: []string{"-version"}, Pattern: `version "21`}, true, "", "21.0.2"},
		{"not found", cmd("ghc", "--version"), false, "not found on PATH", ""},
		{"exit code", cmd("fail"), false, "exit 1, expected 0", "1.0"},
		{"expected exit code", runtimes.Command{Binary: "fail", ExitCode: runtimes.Ptr(1)}, true, "", "1.0"},
		{"exit code absolute", runtimes.Command{Binary: exit3, ExitCode: runtimes.Ptr(0)}, false, "exit 3, expected 0", "4.5"},
		{"pattern mismatch", runtimes.Command{Binary: "python", Args: []string{"--version"}, Pattern: `Python 3\.`}, false, "pattern `Python 3\\.` did not match", "2.7.18"},
		{"invalid pattern from a row", runtimes.Command{Binary: "node", Pattern: `(`}, false, "invalid pattern `(`: error parsing regexp", ""},
		{"relative path refused", cmd("./python3"), false, "binary must be a bare name or an absolute path: relative path", ""},
		{"shell line refused", cmd("sh -c id"), false, "binary must be a bare name or an absolute path", ""},
		{"injection refused", cmd("python3;id"), false, "binary must be a bare name or an absolute path: \"python3;id\" contains shell metacharacter", ""},
		{"absolute not found", cmd("/nonexistent/ghc"), false, "not found", ""},
		{"absolute directory", cmd(tmp), false, "is a directory", ""},
		{"absolute not executable", cmd(notExec), false, "not executable", ""},
		{"no shebang", cmd(noShebang), false, "could not start: exec format error", ""},
		{"killed by signal", cmd(kill), false, "killed by signal segmentation fault", ""},
		{"nul argument", cmd("node", "a\x00b"), false, "an argument contains a NUL byte", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := Verify(context.Background(), []runtimes.Runtime{rt("t.x", "X", tc.c)}, Options{RunAs: selfRunAs(), Environ: envWithPATH(dir)})
			rr := res.Runtimes[0]
			c := rr.Commands[0]
			if rr.Available != tc.ok || c.OK() != tc.ok {
				t.Errorf("available = %v, want %v: %+v", rr.Available, tc.ok, c)
			}
			if tc.ok && c.Reason != "" || !tc.ok && !strings.HasPrefix(c.Reason, tc.reason) {
				t.Errorf("reason = %q, want prefix %q", c.Reason, tc.reason)
			}
			if !tc.ok && rr.Reason != c.Reason {
				t.Errorf("runtime reason %q, command reason %q", rr.Reason, c.Reason)
			}
			if c.Version != tc.version {
				t.Errorf("version = %q, want %q", c.Version, tc.version)
			}
		})
	}
}

func TestRuntimeLevelOutcomes(t *testing.T) {
	dir := fakePATH(t)
	rts := []runtimes.Runtime{
		{Ref: "a.none", Name: "None"},
		{Ref: "a.bad", Name: "Bad", VerificationProblem: "invalid verification metadata: verification.commands[0].binary: must be a string, got 3"},
		{Ref: "a.empty", Name: "Empty", Verification: &runtimes.Verification{}},
		{Ref: "a.check", Name: "Check", Verification: &runtimes.Verification{CheckRequired: runtimes.Ptr(false)}},
		// Priority order: python3 (prio 1) is missing here? No: "python" (prio 2) fails, ghc (no prio) last.
		rt("a.fallback", "Fallback",
			runtimes.Command{Binary: "ghc", Args: []string{"--version"}},
			runtimes.Command{Binary: "python", Args: []string{"--version"}, Pattern: `Python 3\.`, Priority: runtimes.Ptr(2)},
			runtimes.Command{Binary: "nope", Priority: runtimes.Ptr(1)}),
		rt("a.second", "Second",
			runtimes.Command{Binary: "nope", Priority: runtimes.Ptr(1)},
			runtimes.Command{Binary: "python3", Args: []string{"--version"}, Pattern: `Python 3\.`, Priority: runtimes.Ptr(2)},
			runtimes.Command{Binary: "node", Priority: runtimes.Ptr(3)}),
	}
	res := Verify(context.Background(), rts, Options{RunAs: selfRunAs(), Environ: envWithPATH(dir)})
	want := []struct {
		avail  bool
		via    string
		reason string
		ncmds  int
	}{
		{false, "", "no verification metadata", 0},
		{false, "", "invalid verification metadata: verification.commands[0].binary", 0},
		{false, "", "no verification commands", 0},
		{true, "always", "", 0},
		{false, "", "nope: not found on PATH; python --version: pattern `Python 3\\.` did not match; ghc --version: not found on PATH", 3},
		{true, "python3 --version", "", 2},
	}
	for i, w := range want {
		r := res.Runtimes[i]
		if r.Available != w.avail || r.Via != w.via || !strings.HasPrefix(r.Reason, w.reason) || len(r.Commands) != w.ncmds {
			t.Errorf("%s: got available=%v via=%q reason=%q commands=%d; want %+v", r.Ref, r.Available, r.Via, r.Reason, len(r.Commands), w)
		}
	}
	if !reflect.DeepEqual(res.Available, []string{"check", "second"}) {
		t.Errorf("available = %q", res.Available)
	}
}

func TestTimeoutReason(t *testing.T) {
	dir := fakePATH(t)
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.b", "Sleeper", cmd("sleeper", "30"))}, Options{RunAs: selfRunAs(), Environ: envWithPATH(dir), Timeout: 300 * time.Millisecond})
	c := res.Runtimes[0].Commands[0]
	if c.Reason != "timed out after 300ms" || !c.Ran || c.ExitCode != -1 {
		t.Errorf("%+v", c)
	}
}

func TestContextCancel(t *testing.T) {
	dir := fakePATH(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	res := Verify(ctx, []runtimes.Runtime{rt("a.b", "S", cmd("sleeper", "30")), rt("a.c", "S2", cmd("sleeper", "30"))}, Options{RunAs: selfRunAs(), Environ: envWithPATH(dir)})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Verify took %v after cancel", d)
	}
	for _, r := range res.Runtimes {
		if r.Available || !strings.HasPrefix(r.Reason, "canceled: context canceled") {
			t.Errorf("%s: %q", r.Ref, r.Reason)
		}
	}
	// Already canceled: nothing starts.
	res = Verify(ctx, []runtimes.Runtime{rt("a.b", "S", cmd("node"))}, Options{RunAs: selfRunAs(), Environ: envWithPATH(dir)})
	if c := res.Runtimes[0].Commands[0]; c.Ran || !strings.HasPrefix(c.Reason, "canceled") {
		t.Errorf("%+v", c)
	}
}

func TestLookPath(t *testing.T) {
	dir := fakePATH(t)
	// Relative and empty PATH entries are never searched, even when the
	// working directory holds the binary.
	wd, _ := os.Getwd()
	t.Chdir(dir)
	defer os.Chdir(wd) //nolint:errcheck
	for _, p := range []string{".", "", ":.:", "bin"} {
		if got, err := lookPathIn(p, "python3"); err == nil {
			t.Errorf("lookPathIn(%q) found %s", p, got)
		}
	}
	if got, err := lookPathIn("/nonexistent:"+dir, "python3"); err != nil || got != filepath.Join(dir, "python3") {
		t.Errorf("got %s %v", got, err)
	}
	// A directory or a non-executable file of that name is skipped.
	other := t.TempDir()
	os.Mkdir(filepath.Join(other, "python3"), 0o755)       //nolint:errcheck
	os.WriteFile(filepath.Join(other, "node"), nil, 0o644) //nolint:errcheck
	if got, _ := lookPathIn(other+":"+dir, "python3"); got != filepath.Join(dir, "python3") {
		t.Errorf("directory not skipped: %s", got)
	}
	if got, _ := lookPathIn(other+":"+dir, "node"); got != filepath.Join(dir, "node") {
		t.Errorf("non-executable not skipped: %s", got)
	}
	// A custom LookPath is used.
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.b", "B", cmd("whatever"))}, Options{RunAs: selfRunAs(),
		LookPath: func(string) (string, error) { return filepath.Join(dir, "node"), nil },
	})
	if !res.Runtimes[0].Available || res.Runtimes[0].Version != "22.11.0" {
		t.Errorf("%+v", res.Runtimes[0])
	}
}

func TestScrubEnv(t *testing.T) {
	got := scrubEnv([]string{
		"PATH=/bin", "HOME=/h", "LANG=C.UTF-8", "LC_ALL=C", "LC_CTYPE=C", "TZ=UTC", "TMPDIR=/t",
		"ATTUNE__DATABASE__URL=postgres://u:secret@h/db", "DATABASE_URL=x", "PGPASSWORD=x", "PGHOST=x",
		"AWS_SECRET_ACCESS_KEY=x", "KEEP_ME=1", "LANGUAGE=x", "bogus", "=x",
	}, []string{"KEEP_ME", " "})
	want := []string{"PATH=/bin", "HOME=/h", "LANG=C.UTF-8", "LC_ALL=C", "LC_CTYPE=C", "TZ=UTC", "TMPDIR=/t", "KEEP_ME=1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scrubEnv = %q", got)
	}
	if got := scrubEnv([]string{"HOME=/h"}, nil); !reflect.DeepEqual(got, []string{"HOME=/h", "PATH=" + defaultPATH}) {
		t.Errorf("no PATH: %q", got)
	}
}

// TestSeedOnThisHost is the "done means": the seed's five runtimes
// on this host (which has python3 and node) are all available. It fails,
// naming what is missing, on a host without them.
func TestSeedOnThisHost(t *testing.T) {
	for _, b := range []string{"python3", "node"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("this test needs %s on PATH (the seed's verification runs it): %v", b, err)
		}
	}
	res := Verify(context.Background(), loadSeed(t), Options{RunAs: selfRunAs()})
	want := []string{"built-in sensor", "native", "node.js", "python", "shell"}
	if !reflect.DeepEqual(res.Available, want) {
		for _, r := range res.Runtimes {
			t.Logf("%s: available=%v reason=%q commands=%+v", r.Ref, r.Available, r.Reason, r.Commands)
		}
		t.Fatalf("available = %q, want %q", res.Available, want)
	}
	t.Logf("seed on this host: %v in %v (versions %v)", res.Available, res.Duration, res.Versions)
}

// TestRuntimeTimeIsRunTime: a runtime's Duration (runtime verify's TIME) is
// how long its commands ran, not how long it waited for a free slot behind
// a slow runtime (MaxParallel 1).
func TestRuntimeTimeIsRunTime(t *testing.T) {
	tmp := t.TempDir()
	slow := writeScript(t, tmp, "slow", "sleep 0.6\necho 'slow 1.0'\n")
	quick := writeScript(t, tmp, "quick", "sleep 0.05\necho 'quick 2.0'\n")
	res := Verify(context.Background(), []runtimes.Runtime{rt("t.slow", "Slow", cmd(slow)), rt("t.quick", "Quick", cmd(quick))},
		Options{RunAs: selfRunAs(), Environ: envWithPATH(tmp), MaxParallel: 1})
	for _, rr := range res.Runtimes {
		if !rr.Available || len(rr.Commands) != 1 {
			t.Fatalf("%s: %+v", rr.Name, rr)
		}
		if rr.Duration != rr.Commands[0].Duration {
			t.Errorf("%s: TIME %s, but its command ran %s", rr.Name, rr.Duration, rr.Commands[0].Duration)
		}
	}
	quickRT := res.Runtimes[1]
	if quickRT.Name != "Quick" || quickRT.Duration < 50*time.Millisecond || quickRT.Duration >= 500*time.Millisecond {
		t.Errorf("quick runtime: TIME %s, want its own run (about 50 ms), not the slow one's 600 ms it waited for", quickRT.Duration)
	}
}
