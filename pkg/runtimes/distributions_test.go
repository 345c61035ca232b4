package runtimes

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseDistributions(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		want    *Verification
		wantErr string
	}{
		{"empty", ``, nil, ""},
		{"null", `null`, nil, ""},
		{"empty object", `{}`, nil, ""},
		{"other keys only", `{"ubuntu": {"packages": ["python3"]}}`, nil, ""},
		{"null verification", `{"verification": null}`, nil, ""},
		{"always", `{"verification": {"always_available": true}}`, &Verification{AlwaysAvailable: true}, ""},
		{"check_required false", `{"verification": {"check_required": false}}`, &Verification{CheckRequired: Ptr(false)}, ""},
		{"seed python", `{"verification": {"commands": [
			{"binary": "python3", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 1},
			{"binary": "python", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 2}]}}`,
			&Verification{Commands: []Command{
				{Binary: "python3", Args: []string{"--version"}, ExitCode: Ptr(0), Pattern: `Python 3\.`, Priority: Ptr(1)},
				{Binary: "python", Args: []string{"--version"}, ExitCode: Ptr(0), Pattern: `Python 3\.`, Priority: Ptr(2)}}}, ""},
		{"unknown keys tolerated", `{"verification": {"timeout": 3, "commands": [{"binary": "node", "patern": "x", "env": {}}]}, "installation": {}}`,
			&Verification{Commands: []Command{{Binary: "node"}}}, ""},
		{"lenient numbers and bools", `{"verification": {"always_available": "false", "commands": [{"binary": "x", "exit_code": "2", "priority": 3.0, "optional": "true", "args": "--version"}]}}`,
			&Verification{Commands: []Command{{Binary: "x", ExitCode: Ptr(2), Priority: Ptr(3), Optional: true, Args: []string{"--version"}}}}, ""},
		{"optional flag", `{"verification": {"commands": [{"binary": "java", "args": ["-version"], "optional": true}]}}`,
			&Verification{Commands: []Command{{Binary: "java", Args: []string{"-version"}, Optional: true}}}, ""},
		{"not an object", `[1]`, nil, "distributions is not a JSON object"},
		{"verification a string", `{"verification": "python3"}`, nil, "verification: json: cannot unmarshal string"},
		{"binary a number", `{"verification": {"commands": [{"binary": 3}]}}`, nil, "verification.commands[0].binary: must be a string, got 3"},
		{"command a string", `{"verification": {"commands": ["python3 --version"]}}`, nil, `verification.commands[0]: must be an object, got "python3 --version"`},
		{"exit code fraction", `{"verification": {"commands": [{"binary": "x", "exit_code": 0.5}]}}`, nil, "verification.commands[0].exit_code: must be an integer, got 0.5"},
		{"bool garbage", `{"verification": {"always_available": "maybe"}}`, nil, `verification.always_available: must be true or false, got "maybe"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDistributions([]byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %s, want %s", js(got), js(tc.want))
			}
		})
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestDistributionsRoundTrip: what Add stores, ParseDistributions reads back.
func TestDistributionsRoundTrip(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(manifestsDir, "good", "seed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range mustParse(t, string(data)) {
		b, err := DistributionsVerification(r.Verification)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseDistributions([]byte(`{"verification": ` + string(b) + `}`))
		if err != nil || !reflect.DeepEqual(got, r.Verification) {
			t.Errorf("%s: got %s, %v; want %s", r.Ref, js(got), err, js(r.Verification))
		}
	}
}

// fuzzSeeds are the good and bad manifests plus a few hand-written inputs.
func fuzzSeeds(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		files, _ := filepath.Glob(filepath.Join(manifestsDir, dir, "*.*"))
		for _, file := range files {
			if ext := filepath.Ext(file); ext == ".yaml" || ext == ".json" {
				b, err := os.ReadFile(file)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
	for _, s := range []string{"", "[]", "{}", "- ", "a: &a [*a]", "ref: a.b\nname: A\nverification: {commands: [{binary: a}]}\n", "\xff\xfe", "!!binary aGVsbG8=", "? [a]\n: b\n"} {
		f.Add([]byte(s))
	}
}

// FuzzParseManifest: never panics; an error is a *ValidationError; what is
// accepted validates, and survives Marshal and a second parse unchanged.
func FuzzParseManifest(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rts, err := ParseManifest(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %T without problems: %v", err, err)
			}
			if rts != nil {
				t.Fatal("runtimes returned with an error")
			}
			return
		}
		if len(rts) == 0 {
			t.Fatal("no error and no runtimes")
		}
		if err := Validate(rts); err != nil {
			t.Fatalf("accepted manifest does not validate: %v", err)
		}
		for _, format := range []string{"yaml", "json"} {
			out, err := Marshal(rts, format)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseManifest(out)
			if err != nil {
				t.Fatalf("%s output does not parse: %v\n%s", format, err, out)
			}
			if !reflect.DeepEqual(back, rts) {
				t.Fatalf("%s round trip differs:\n%s", format, out)
			}
		}
	})
}

// FuzzParseDistributions: never panics; what parses re-encodes and parses
// to the same value.
func FuzzParseDistributions(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"verification": null}`, `{"verification": {"always_available": true}}`,
		`{"verification": {"check_required": "false"}}`,
		`{"verification": {"commands": [{"binary": "python3", "args": ["--version"], "exit_code": 0, "pattern": "Python 3\\.", "priority": 1}]}}`,
		`{"verification": {"commands": [{"binary": "x", "exit_code": "2", "priority": 1e3, "args": "-v"}]}}`,
		`{"verification": {"commands": [{"binary": 1}]}}`, `{"verification": [`, `{"a": {"b": [1, 2, {"c": null}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := ParseDistributions(raw)
		if err != nil || v == nil {
			return
		}
		b, err := DistributionsVerification(v)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseDistributions([]byte(`{"verification": ` + string(b) + `}`))
		if err != nil {
			t.Fatalf("re-encoded verification does not parse: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(normalizeV(again), normalizeV(v)) {
			t.Fatalf("round trip differs: %s vs %s", js(again), js(v))
		}
	})
}

// normalizeV maps empty slices to nil so encoding's omitempty does not count as a difference.
func normalizeV(v *Verification) *Verification {
	if v == nil {
		return nil
	}
	c := *v
	if len(c.Commands) == 0 {
		c.Commands = nil
	}
	c.Commands = append([]Command(nil), c.Commands...)
	for i := range c.Commands {
		if len(c.Commands[i].Args) == 0 {
			c.Commands[i].Args = nil
		}
	}
	return &c
}
