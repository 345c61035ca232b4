package detect

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/runtimes"
	"github.com/attune-automation/attunectl/pkg/sandbox"
	"github.com/attune-automation/attunectl/pkg/testsupport"
)

// TestEnvironmentIsScrubbed: database URLs, passwords and other secrets in
// attunectl's environment never reach a verification command.
func TestEnvironmentIsScrubbed(t *testing.T) {
	dir := fakePATH(t)
	secrets := map[string]string{
		"ATTUNE__DATABASE__URL":      "postgres://attune:hunter2@db/attune",
		"ATTUNE__DATABASE__PASSWORD": "hunter2",
		"ATTUNE_SENSOR_RUNTIMES":     "python",
		"DATABASE_URL":               "postgres://u:hunter2@db/x",
		"PGPASSWORD":                 "hunter2",
		"PGHOST":                     "db",
		"PGUSER":                     "attune",
		"AWS_SECRET_ACCESS_KEY":      "hunter2",
		"GITHUB_TOKEN":               "hunter2",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	t.Setenv("LC_ALL", "C")
	t.Setenv("TZ", "UTC")
	t.Setenv("MY_PROXY", "http://proxy:3128")
	out := filepath.Join(t.TempDir(), "env.txt")
	// Default Environ (os.Environ) on purpose: the real environment.
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.env", "Env", cmd("envdump", out))}, Options{RunAs: selfRunAs(), PassthroughEnv: []string{"MY_PROXY"}})
	if !res.Runtimes[0].Available {
		t.Fatalf("envdump failed: %+v", res.Runtimes[0])
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("hunter2")) {
		t.Errorf("a secret reached the command:\n%s", b)
	}
	allowed := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "TZ": true, "TMPDIR": true, "MY_PROXY": true, "PWD": true, "SHLVL": true, "_": true, "OLDPWD": true}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, _, _ := strings.Cut(line, "=")
		seen[name] = true
		// PWD, SHLVL, _ and OLDPWD are set by /bin/sh itself, not passed by the engine.
		if !allowed[name] && !strings.HasPrefix(name, "LC_") {
			t.Errorf("variable %s reached the command", name)
		}
		if strings.HasPrefix(name, "ATTUNE") || strings.HasPrefix(name, "PG") || name == "DATABASE_URL" {
			t.Errorf("forbidden variable %s reached the command", name)
		}
	}
	for _, want := range []string{"PATH", "LC_ALL", "TZ", "MY_PROXY"} {
		if !seen[want] {
			t.Errorf("%s did not reach the command", want)
		}
	}
	if !strings.Contains(string(b), "PWD=/\n") {
		t.Errorf("working directory is not /:\n%s", b)
	}
}

// TestTimeoutKillsProcessGroup: a command sleeping 60 s, with a grandchild
// sleeping too, is killed with its whole group when the timeout fires.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	tmp := t.TempDir()
	mark := testsupport.UniqueMark()
	var seen atomic.Int64
	sleeper := writeScript(t, tmp, "sleeper", `sleep `+mark+` &
exec sleep `+mark+`
`)
	const timeout = time.Second
	// The script and its child really ran: both are found while it runs.
	go func() {
		for i := 0; i < 100 && len(testsupport.ProcessesWith(mark)) < 2; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		seen.Store(int64(len(testsupport.ProcessesWith(mark))))
	}()
	start := time.Now()
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.sleep", "Sleep", cmd(sleeper))}, Options{RunAs: selfRunAs(), Timeout: timeout})
	elapsed := time.Since(start)
	if elapsed > timeout+time.Second {
		t.Errorf("Verify took %v, want at most timeout+1s", elapsed)
	}
	c := res.Runtimes[0].Commands[0]
	if c.Reason != "timed out after 1s" {
		t.Errorf("reason = %q", c.Reason)
	}
	if n := seen.Load(); n != 2 {
		t.Errorf("%d processes ran, want the command and its child", n)
	}
	if left := testsupport.WaitGone(mark, 2*time.Second); len(left) > 0 {
		t.Errorf("processes of the command remain: %v", left)
	}
}

// TestLeaderExitsGrandchildHoldsPipe: the command exits at once but leaves
// a grandchild holding stdout. Verify neither waits for the grandchild nor
// leaves it running.
func TestLeaderExitsGrandchildHoldsPipe(t *testing.T) {
	tmp := t.TempDir()
	mark := testsupport.UniqueMark()
	script := writeScript(t, tmp, "daemonish", `(sleep `+mark+`; echo late) &
while ! grep -qs '`+strings.Replace(mark, ".", "[.]", 1)+`' /proc/[0-9]*/cmdline; do sleep 0.01; done
echo "tool 2.0"
exit 0
`)
	start := time.Now()
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.d", "D", runtimes.Command{Binary: script, Pattern: `tool 2\.`})}, Options{RunAs: selfRunAs(), Timeout: 10 * time.Second})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Verify took %v: it waited for the grandchild", d)
	}
	if !res.Runtimes[0].Available {
		t.Errorf("%+v", res.Runtimes[0])
	}
	if left := testsupport.WaitGone(mark, 2*time.Second); len(left) > 0 {
		t.Errorf("grandchild %v survived", left)
	}
}

// TestEndlessPrinter: a command printing without end is read through the
// cap, the pattern in its first 64 KiB still matches, memory stays bounded,
// and the timeout ends it.
func TestEndlessPrinter(t *testing.T) {
	dir := fakePATH(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	res := Verify(context.Background(), []runtimes.Runtime{rt("a.p", "Printer", runtimes.Command{Binary: "printer", Pattern: `^printer 1\.2`})},
		Options{RunAs: selfRunAs(), Environ: envWithPATH(dir), Timeout: time.Second})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	c := res.Runtimes[0].Commands[0]
	if elapsed > 2*time.Second {
		t.Errorf("Verify took %v", elapsed)
	}
	if !c.Matched || !c.Truncated || c.Version != "1.2.3" || c.Reason != "timed out after 1s" {
		t.Errorf("%+v", c)
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes while reading an endless printer", grown)
	}
	if after.TotalAlloc-before.TotalAlloc > 16<<20 {
		t.Errorf("allocated %d bytes while reading an endless printer", after.TotalAlloc-before.TotalAlloc)
	}
}

// TestLargeOutputStillSucceeds: a command printing far more than the cap
// and then exiting 0 succeeds when its pattern is in the first 64 KiB, and
// only the first MaxOutput bytes are kept.
func TestLargeOutputStillSucceeds(t *testing.T) {
	tmp := t.TempDir()
	script := writeScript(t, tmp, "chatty", `echo "chatty 3.1.4"
i=0
while [ $i -lt 2000 ]; do
  echo "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
  i=$((i+1))
done
echo "MARKER_AFTER_CAP"
exit 0
`)
	res := Verify(context.Background(), []runtimes.Runtime{
		rt("a.c", "C", runtimes.Command{Binary: script, Pattern: `chatty 3\.`}),
		rt("a.d", "D", runtimes.Command{Binary: script, Pattern: `MARKER_AFTER_CAP`}),
	}, Options{RunAs: selfRunAs()})
	if c := res.Runtimes[0].Commands[0]; !c.OK() || !c.Truncated || c.Version != "3.1.4" {
		t.Errorf("%+v", c)
	}
	if c := res.Runtimes[1].Commands[0]; c.OK() || c.Matched {
		t.Errorf("a pattern beyond the cap matched: %+v", c)
	}
	if res.Runtimes[0].Commands[0].Cached == res.Runtimes[1].Commands[0].Cached {
		t.Error("the identical command was not shared: exactly one result should be Cached")
	}
	// Directly: exactly MaxOutput bytes kept.
	sb, err := sandbox.New(sandbox.Config{RunAs: selfRunAs()})
	if err != nil {
		t.Fatal(err)
	}
	out := runProcess(context.Background(), sb, script, script, nil, scrubEnv(os.Environ(), nil), 10*time.Second, 1000)
	if len(out.stdout) != 1000 || !out.truncated || out.exitCode != 0 {
		t.Errorf("kept %d bytes, truncated=%v, exit %d", len(out.stdout), out.truncated, out.exitCode)
	}
}

// TestAllowListRefusesWithoutRunning: a binary that is not on the
// allow-list never starts; the marker file it would create stays absent.
func TestAllowListRefusesWithoutRunning(t *testing.T) {
	tmp := t.TempDir()
	marker := filepath.Join(tmp, "marker")
	bin := t.TempDir()
	script := writeScript(t, bin, "python3", "touch \""+marker+"\"\necho 'Python 3.99.0'\n")
	env := envWithPATH(bin)
	cases := []struct {
		name    string
		allowed []string
		binary  string
		runs    bool
	}{
		{"bare name not listed", []string{"node"}, "python3", false},
		{"absolute path not listed", []string{"node", "/usr/bin/python3"}, script, false},
		{"bare entry does not allow an absolute path", []string{"python3"}, script, false},
		{"relative entry never matches", []string{"./python3", bin + "/../x"}, "python3", false},
		{"bare name listed", []string{"python3"}, "python3", true},
		{"absolute path listed", []string{script}, script, true},
		{"bare name resolving to a listed path", []string{filepath.Join(bin, ".", "python3")}, "python3", true},
		{"empty list allows all", nil, "python3", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(marker)
			res := Verify(context.Background(), []runtimes.Runtime{rt("a.py", "Py", cmd(tc.binary, "--version"))}, Options{RunAs: selfRunAs(), Environ: env, AllowedBinaries: tc.allowed})
			c := res.Runtimes[0].Commands[0]
			_, err := os.Stat(marker)
			ran := err == nil
			if ran != tc.runs || c.Ran != tc.runs {
				t.Errorf("ran = %v (marker), %v (result), want %v: %+v", ran, c.Ran, tc.runs, c)
			}
			if !tc.runs && c.Reason != "not in allowed_binaries" {
				t.Errorf("reason = %q", c.Reason)
			}
		})
	}
}

// TestIdenticalCommandsRunOnce: three runtimes asking for the same argv
// cause one process; a different argv is another process.
func TestIdenticalCommandsRunOnce(t *testing.T) {
	tmp := t.TempDir()
	counter := filepath.Join(tmp, "count")
	other := filepath.Join(tmp, "other")
	script := writeScript(t, tmp, "counted", "sleep 0.2\necho run >> \"$1\"\necho 'counted 1.0'\n")
	rts := []runtimes.Runtime{
		rt("a.one", "One", runtimes.Command{Binary: script, Args: []string{counter}}),
		rt("a.two", "Two", runtimes.Command{Binary: script, Args: []string{counter}, Pattern: `counted`}),
		rt("a.three", "Three", runtimes.Command{Binary: script, Args: []string{counter}, Pattern: `nomatch`}),
		rt("a.four", "Four", runtimes.Command{Binary: script, Args: []string{other}}),
	}
	res := Verify(context.Background(), rts, Options{RunAs: selfRunAs()})
	b, _ := os.ReadFile(counter)
	if n := strings.Count(string(b), "run"); n != 1 {
		t.Errorf("the shared command ran %d times, want 1", n)
	}
	b, _ = os.ReadFile(other)
	if n := strings.Count(string(b), "run"); n != 1 {
		t.Errorf("the other command ran %d times, want 1", n)
	}
	cached := 0
	for _, r := range res.Runtimes[:3] {
		if r.Commands[0].Cached {
			cached++
		}
	}
	if cached != 2 || res.Runtimes[3].Commands[0].Cached {
		t.Errorf("cached = %d, want 2 of the 3 identical commands", cached)
	}
	if !res.Runtimes[0].Available || !res.Runtimes[1].Available || res.Runtimes[2].Available {
		t.Errorf("each runtime applies its own pattern to the shared output: %+v", res.Runtimes)
	}
	// A new Verify call runs it again: the cache is per detection.
	Verify(context.Background(), rts[:1], Options{RunAs: selfRunAs()})
	b, _ = os.ReadFile(counter)
	if n := strings.Count(string(b), "run"); n != 2 {
		t.Errorf("after a second Verify the command ran %d times, want 2", n)
	}
}
