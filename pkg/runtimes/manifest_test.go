package runtimes

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const manifestsDir = "../../testdata/manifests"

func mustParse(t *testing.T, src string) []Runtime {
	t.Helper()
	rts, err := ParseManifest([]byte(src))
	if err != nil {
		t.Fatalf("ParseManifest: %v\ninput:\n%s", err, src)
	}
	return rts
}

func parseErr(t *testing.T, src string) *ValidationError {
	t.Helper()
	_, err := ParseManifest([]byte(src))
	if err == nil {
		t.Fatalf("ParseManifest accepted invalid input:\n%s", src)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error is %T, want *ValidationError: %v", err, err)
	}
	return ve
}

func TestParseManifestGoodFiles(t *testing.T) {
	cases := []struct {
		file string
		refs []string
	}{
		{"seed.yaml", []string{"core.sensor.builtin", "core.sensor.native", "core.sensor.nodejs", "core.sensor.python", "core.sensor.shell"}},
		{"seed.json", []string{"core.sensor.builtin", "core.sensor.native", "core.sensor.nodejs", "core.sensor.python", "core.sensor.shell"}},
		{"single.yaml", []string{"test.sensor.ruby"}},
		{"multidoc.yaml", []string{"test.sensor.java", "test.sensor.go", "test.action.perl", "test.sensor.deno"}},
		{"attune-style.json", []string{"acme.sensor.powershell"}},
		{"check-not-required.yaml", []string{"acme.sensor.builtin"}},
	}
	entries, err := os.ReadDir(filepath.Join(manifestsDir, "good"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(cases) {
		t.Errorf("testdata/manifests/good has %d files, the test knows %d: add the new file to the table", len(entries), len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(manifestsDir, "good", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			rts, err := ParseManifestFile(tc.file, data)
			if err != nil {
				t.Fatalf("ParseManifestFile: %v", err)
			}
			if got := Refs(rts); !reflect.DeepEqual(got, tc.refs) {
				t.Errorf("refs = %v, want %v", got, tc.refs)
			}
			for _, r := range rts {
				if r.Type != TypeSensor && r.Type != TypeAction {
					t.Errorf("%s: type %q, want a default of sensor", r.Ref, r.Type)
				}
			}
		})
	}
}

// TestSeedYAMLMatchesJSON checks the two forms of the seed are the same runtimes.
func TestSeedYAMLMatchesJSON(t *testing.T) {
	y, err := os.ReadFile(filepath.Join(manifestsDir, "good", "seed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := os.ReadFile(filepath.Join(manifestsDir, "good", "seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := mustParse(t, string(y)), mustParse(t, string(j))
	if !reflect.DeepEqual(a, b) {
		t.Errorf("seed.yaml and seed.json differ:\n%+v\n%+v", a, b)
	}
	py := a[3]
	if py.Ref != "core.sensor.python" || len(py.Verification.Commands) != 2 ||
		py.Verification.Commands[0].Pattern != `Python 3\.` || *py.Verification.Commands[1].Priority != 2 ||
		*py.Verification.Commands[0].ExitCode != 0 || py.PackRef != "core" {
		t.Errorf("python runtime parsed wrong: %+v", py.Verification)
	}
	if !a[0].Verification.Always() || a[2].Verification.Always() {
		t.Errorf("Always(): builtin %v nodejs %v", a[0].Verification.Always(), a[2].Verification.Always())
	}
}

// TestBadCorpus runs every broken manifest under testdata/manifests/bad and
// checks the error contains the text of its .err sibling. The CLI's tests
// reuse the same corpus through `runtime add -f`.
func TestBadCorpus(t *testing.T) {
	dir := filepath.Join(manifestsDir, "bad")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if ext != ".yaml" && ext != ".json" {
			continue
		}
		n++
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(name, ext)+".err"))
			if err != nil {
				t.Fatalf("every bad manifest needs a .err file: %v", err)
			}
			wantStr := strings.TrimRight(string(want), "\n")
			if wantStr == "" {
				t.Fatal(".err file is empty")
			}
			rts, err := ParseManifestFile(name, data)
			if err == nil {
				t.Fatalf("accepted: %+v", rts)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, want *ValidationError: %v", err, err)
			}
			if !strings.Contains(err.Error(), wantStr) {
				t.Errorf("error does not contain %q:\n%v", wantStr, err)
			}
			if rts != nil {
				t.Errorf("runtimes returned with an error: %+v", rts)
			}
		})
	}
	if n < 25 {
		t.Errorf("the bad corpus has %d manifests, want at least 25", n)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".err" {
			base := strings.TrimSuffix(e.Name(), ".err")
			_, y := os.Stat(filepath.Join(dir, base+".yaml"))
			_, j := os.Stat(filepath.Join(dir, base+".json"))
			if y != nil && j != nil {
				t.Errorf("%s has no manifest beside it", e.Name())
			}
		}
	}
}

func TestManifestTooLarge(t *testing.T) {
	// Valid YAML that is just over the limit, and a 10 MB stream.
	var b bytes.Buffer
	b.WriteString("ref: test.sensor.big\nname: Big\nverification: {always_available: true}\ndescription: \"")
	for b.Len() <= MaxManifestSize {
		b.WriteString("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	}
	b.WriteString("\"\n")
	if _, err := ParseManifest(b.Bytes()); err == nil || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("ParseManifest(%d bytes) = %v, want the 1 MiB limit", b.Len(), err)
	}
	// Exactly at the limit is fine size-wise.
	exact := bytes.Repeat([]byte(" "), MaxManifestSize-60)
	exact = append([]byte("ref: test.sensor.ok\nname: Ok\nverification: {always_available: true}\n#"), exact...)
	exact = exact[:MaxManifestSize]
	if _, err := ParseManifest(exact); err != nil {
		t.Errorf("a manifest of exactly MaxManifestSize bytes: %v", err)
	}
}

func TestParseManifestForms(t *testing.T) {
	t.Run("defaults and nulls", func(t *testing.T) {
		rts := mustParse(t, "ref: a.b\nname: A\ndescription: null\naliases: ~\nverification:\n  commands:\n    - binary: a\n      args: null\n      exit_code: ~\n")
		r := rts[0]
		if r.Type != TypeSensor {
			t.Errorf("type = %q, want sensor by default", r.Type)
		}
		if r.Description != "" || r.Aliases != nil || r.Verification.Commands[0].ExitCode != nil {
			t.Errorf("nulls not treated as absent: %+v", r)
		}
	})
	t.Run("no verification is allowed", func(t *testing.T) {
		rts := mustParse(t, "ref: a.b\nname: A\ntype: action\n")
		if rts[0].Verification != nil || rts[0].Type != TypeAction {
			t.Errorf("%+v", rts[0])
		}
	})
	t.Run("empty documents are skipped", func(t *testing.T) {
		rts := mustParse(t, "---\n---\nref: a.b\nname: A\n---\n")
		if len(rts) != 1 {
			t.Errorf("got %d runtimes", len(rts))
		}
	})
	t.Run("anchors and aliases", func(t *testing.T) {
		rts := mustParse(t, "- ref: a.b\n  name: A\n  verification: &v\n    commands: [{binary: python3, args: [--version]}]\n- ref: a.c\n  name: C\n  verification: *v\n")
		if rts[1].Verification == nil || rts[1].Verification.Commands[0].Binary != "python3" {
			t.Errorf("%+v", rts[1])
		}
	})
	t.Run("json with tabs", func(t *testing.T) {
		rts := mustParse(t, "{\n\t\"ref\": \"a.b\",\n\t\"name\": \"A\",\n\t\"verification\": {\"check_required\": false}\n}\n")
		if !rts[0].Verification.Always() || *rts[0].Verification.CheckRequired {
			t.Errorf("%+v", rts[0].Verification)
		}
	})
	t.Run("integers in other notations", func(t *testing.T) {
		rts := mustParse(t, "ref: a.b\nname: A\nverification: {commands: [{binary: a, exit_code: 0x7f, priority: -3}]}\n")
		c := rts[0].Verification.Commands[0]
		if *c.ExitCode != 127 || *c.Priority != -3 {
			t.Errorf("%+v", c)
		}
	})
	t.Run("absolute binary and args with metacharacters", func(t *testing.T) {
		rts := mustParse(t, "ref: a.b\nname: A\nverification: {commands: [{binary: /opt/homebrew/opt/node@20/bin/node, args: ['-e', 'console.log(1); process.exit(0)']}]}\n")
		if got := rts[0].Verification.Commands[0].String(); got != `/opt/homebrew/opt/node@20/bin/node -e 'console.log(1); process.exit(0)'` {
			t.Errorf("String() = %s", got)
		}
	})
}

func TestProblemsHavePathsAndLines(t *testing.T) {
	src := `- ref: test.sensor.ok
  name: Ok
  verification: {always_available: true}
- ref: Test.Bad
  name: ""
  verification:
    commands:
      - binary: python3
        args: [--version]
      - binary: ./x
        exit_code: 256
        pattern: '('
        patern: x
`
	ve := parseErr(t, src)
	want := []Problem{
		{Path: "runtimes[1].ref", Line: 4},
		{Path: "runtimes[1].name", Line: 5},
		{Path: "runtimes[1].verification.commands[1].binary", Line: 10},
		{Path: "runtimes[1].verification.commands[1].exit_code", Line: 11},
		{Path: "runtimes[1].verification.commands[1].pattern", Line: 12},
		{Path: "runtimes[1].verification.commands[1].patern", Line: 13},
	}
	if len(ve.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ve.Problems), len(want), ve)
	}
	for i, w := range want {
		if ve.Problems[i].Path != w.Path || ve.Problems[i].Line != w.Line {
			t.Errorf("problem %d = %+v, want path %s line %d", i, ve.Problems[i], w.Path, w.Line)
		}
	}
	msg := ve.Error()
	for _, s := range []string{
		"invalid manifest: 6 problems:",
		"runtimes[1].verification.commands[1].pattern: error parsing regexp: missing closing ): `(` (line 12)",
		`runtimes[1].ref: "Test.Bad" must be lower case: use test.bad (line 4)`,
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error lacks %q:\n%s", s, msg)
		}
	}
}

func TestTypeProblemNotReportedTwice(t *testing.T) {
	ve := parseErr(t, "ref: a.b\nname: [A]\nverification: {always_available: true}\n")
	if len(ve.Problems) != 1 || ve.Problems[0].Path != "runtimes[0].name" {
		t.Errorf("want exactly the type problem on name, got %v", ve)
	}
	ve = parseErr(t, "ref: a.b\nname: A\nverification:\n  commands: [python3]\n")
	if len(ve.Problems) != 1 || !strings.Contains(ve.Error(), "commands[0]: must be a command object") {
		t.Errorf("got %v", ve)
	}
}

func TestValidate(t *testing.T) {
	ok := Runtime{Ref: "a.b", Name: "A", Verification: &Verification{Commands: []Command{{Binary: "a"}}}}
	if err := Validate([]Runtime{ok}); err != nil {
		t.Errorf("valid runtime: %v", err)
	}
	bad := ok
	bad.Verification = &Verification{Commands: []Command{{Binary: "a b", ExitCode: Ptr(-1)}}}
	err := Validate([]Runtime{ok, bad})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Fatalf("got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "invalid runtime: 3 problems:") || !strings.Contains(err.Error(), "runtimes[1].ref: duplicate ref a.b (also runtimes[0])") {
		t.Errorf("got %v", err)
	}
}

func TestValidateBinary(t *testing.T) {
	good := []string{"python3", "node", "g++", "python3.12", "/usr/bin/python3", "/opt/homebrew/opt/node@20/bin/node", "x_y-z"}
	for _, b := range good {
		if err := ValidateBinary(b); err != nil {
			t.Errorf("ValidateBinary(%q) = %v", b, err)
		}
	}
	bad := map[string]string{
		"":                        "must not be empty",
		"sh -c python3":           "contains whitespace",
		"python3; rm -rf /":       `shell metacharacter ";"`,
		"python3&&id":             `shell metacharacter "&"`,
		"a>b":                     "shell metacharacter",
		"~/bin/python":            "shell metacharacter",
		"python*":                 "shell metacharacter",
		"./python":                "relative path",
		"bin/python":              "relative path",
		".":                       "relative path",
		"..":                      "relative path",
		"/usr/bin/../bin/python3": `".." component`,
		"/usr/./bin/python3":      `"." component`,
		"/usr//bin/python3":       "empty path component",
		"/usr/bin/":               "ends with '/'",
		"-rf":                     "must not start with '-'",
		"python\x00":              "control character",
		"pyth\ton":                "control character",
		"python\u00a0":            "contains whitespace",
		"pythön":                  "letters, digits and . _ + @ - only",
		"c:python":                "letters, digits",
		strings.Repeat("a", 5000): "longer than",
	}
	for b, want := range bad {
		err := ValidateBinary(b)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateBinary(%q) = %v, want %q", b, err, want)
		}
	}
}

func TestSortedCommandsAndAlways(t *testing.T) {
	v := &Verification{Commands: []Command{
		{Binary: "none1"}, {Binary: "p2", Priority: Ptr(2)}, {Binary: "none2"}, {Binary: "p1", Priority: Ptr(1)}, {Binary: "p2b", Priority: Ptr(2)}, {Binary: "neg", Priority: Ptr(-1)},
	}}
	var got []string
	for _, c := range v.SortedCommands() {
		got = append(got, c.Binary)
	}
	if want := []string{"neg", "p1", "p2", "p2b", "none1", "none2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SortedCommands = %v, want %v", got, want)
	}
	if v.Commands[0].Binary != "none1" {
		t.Error("SortedCommands modified the original")
	}
	var nilV *Verification
	for _, tc := range []struct {
		v    *Verification
		want bool
	}{
		{nilV, false},
		{&Verification{}, false},
		{&Verification{AlwaysAvailable: true}, true},
		{&Verification{CheckRequired: Ptr(false)}, true},
		{&Verification{CheckRequired: Ptr(true)}, false},
		{&Verification{AlwaysAvailable: true, CheckRequired: Ptr(true)}, true},
	} {
		if got := tc.v.Always(); got != tc.want {
			t.Errorf("%+v.Always() = %v", tc.v, got)
		}
	}
}

// TestRoundTrip: what `runtime list -o yaml|json` writes, `runtime add -f` reads back identically.
func TestRoundTrip(t *testing.T) {
	var all []Runtime
	for _, f := range []string{"seed.yaml", "multidoc.yaml", "attune-style.json", "check-not-required.yaml", "single.yaml"} {
		data, err := os.ReadFile(filepath.Join(manifestsDir, "good", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, mustParse(t, string(data))...)
	}
	// Rows from a unified database have no type; tricky strings survive quoting.
	all = append(all, Runtime{Ref: "x.unified", Name: "yes", Description: "0x10", Aliases: []string{"true", "- a", "#x", "a: b"},
		Verification: &Verification{Commands: []Command{{Binary: "x", Args: []string{"", "null", "~", "'q'", "\"dq\"", "1.0"}, Pattern: `^\s*v?(\d+)[.]`}}}})
	for _, format := range []string{"yaml", "json"} {
		out, err := Marshal(all, format)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("%s output does not parse: %v\n%s", format, err, out)
		}
		want := append([]Runtime(nil), all...)
		want[len(want)-1].Type = TypeSensor // a missing type reads back as sensor
		if !reflect.DeepEqual(back, want) {
			t.Errorf("%s round trip differs:\n%s", format, out)
		}
	}
	if _, err := Marshal(all, "toml"); err == nil {
		t.Error("unknown format accepted")
	}
	out, _ := Marshal(nil, "json")
	if strings.TrimSpace(string(out)) != "[]" {
		t.Errorf("Marshal(nil, json) = %s", out)
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		c    Command
		want string
	}{
		{Command{Binary: "python3", Args: []string{"--version"}}, "python3 --version"},
		{Command{Binary: "java", Args: []string{"-version"}}, "java -version"},
		{Command{Binary: "a", Args: []string{"", "x y", `q"`}}, `a '' 'x y' 'q"'`},
		{Command{Binary: "node", Args: []string{"-e", "console.log(1); process.exit(0)"}}, `node -e 'console.log(1); process.exit(0)'`},
		{Command{Binary: "sh", Args: []string{"-c", "it's $HOME"}}, `sh -c 'it'"'"'s $HOME'`},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("String() = %s, want %s", got, tc.want)
		}
	}
}

// TestCommandLinePastesIntoAShell: a shell given the line runs the same
// argv (printf prints each argument followed by a NUL).
func TestCommandLinePastesIntoAShell(t *testing.T) {
	args := []string{"%s\\000", "plain", "", "x y", "it's", "$HOME", "`id`", "$(id)", `a\b`, "*", "?", "~", "[x]", "{a,b}", "é 日本", `"q"`,
		`a'b"c$d\e`, "tab\there", "new\nline", "a;b|c&d>e<f", "#not a comment", "!bang", "''", "'"}
	line := CommandLine("printf", args)
	out, err := exec.Command("sh", "-c", line).Output()
	if err != nil {
		t.Fatalf("sh -c %s: %v", line, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if want := args[1:]; !slices.Equal(got, want) {
		t.Fatalf("sh -c %s\nprinted %q\nwant    %q", line, got, want)
	}
}

func TestAliasBomb(t *testing.T) {
	// 100 commands of 10 args each, referenced by 3000 runtimes through one
	// alias: 3 million args from a 150 KB file.
	var b strings.Builder
	b.WriteString("- ref: a.b\n  name: A\n  verification:\n    commands: &c\n")
	for i := 0; i < 100; i++ {
		b.WriteString("      - {binary: x, args: [a, b, c, d, e, f, g, h, i, j]}\n")
	}
	for i := 0; i < 3000; i++ {
		b.WriteString("- {ref: a.r" + strconv.Itoa(i) + ", name: R, verification: {commands: *c}}\n")
	}
	start := time.Now()
	_, err := ParseManifest([]byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too much data through YAML aliases") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if len(err.Error()) > 20000 {
		t.Errorf("error message is %d bytes", len(err.Error()))
	}
}
