package supervise

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestInterpreter(t *testing.T) {
	cases := []struct {
		ref, ec string
		want    []string
		err     string
	}{
		{"core.sensor.python", `{}`, []string{"python3"}, ""},
		{"core.sensor.nodejs", ``, []string{"node"}, ""},
		{"core.sensor.native", `{}`, nil, ""},
		{"acme.ruby", `{"interpreter": "ruby"}`, []string{"ruby"}, ""},
		{"acme.py", `{"interpreter": {"binary": "python3", "args": ["-u"]}}`, []string{"python3", "-u"}, ""},
		{"acme.bad", `{"interpreter": {"args": ["-u"]}}`, nil, "must be a binary name"},
		{"acme.bad", `[1]`, nil, "not a JSON object"},
	}
	for _, c := range cases {
		got, err := Interpreter(c.ref, []byte(c.ec))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Interpreter(%s, %s) = %v, want error %q", c.ref, c.ec, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Interpreter(%s, %s) = %v, %v; want %v", c.ref, c.ec, got, err, c.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	packs := t.TempDir()
	dir := filepath.Join(packs, "demo", "sensors")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tick.py"), []byte("print(1)\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "plain"), []byte("#!/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/sh\n"), 0o755)

	if argv, why := CommandLine("core.sensor.python", []byte(`{}`), packs, "demo", "tick.py"); why != "" || !reflect.DeepEqual(argv, []string{"python3", filepath.Join(dir, "tick.py")}) {
		t.Errorf("python sensor: %v, %q", argv, why)
	}
	if argv, why := CommandLine("core.sensor.native", nil, packs, "demo", "run"); why != "" || !reflect.DeepEqual(argv, []string{filepath.Join(dir, "run")}) {
		t.Errorf("native sensor: %v, %q", argv, why)
	}
	for _, c := range []struct{ rt, entry, want string }{
		{"core.sensor.python", "missing.py", "no such file or directory"},
		{"core.sensor.native", "plain", "is not executable"},
		{"core.sensor.python", "../../etc/passwd", "leaves the pack's sensors directory"},
	} {
		if _, why := CommandLine(c.rt, nil, packs, "demo", c.entry); !strings.Contains(why, c.want) {
			t.Errorf("%s %s: reason %q, want %q", c.rt, c.entry, why, c.want)
		}
	}
}

// An entrypoint that any user could change — the file writable by others,
// or a directory above it writable by others without the sticky bit — is
// refused with the reason; a sticky directory such as /tmp is not.
func TestCommandLineRefusesWorldWritableEntrypoints(t *testing.T) {
	base := t.TempDir()
	mk := func(dir string, dirMode, fileMode os.FileMode) string {
		d := filepath.Join(base, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, dirMode); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, "s.sh")
		if err := os.WriteFile(p, []byte("exit 0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, fileMode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"file writable by all", mk("a", 0o755, 0o666), "is writable by every user"},
		{"directory writable by all", mk("b", 0o777, 0o644), "which every user may write"},
		{"sticky directory", mk("c", 0o777|os.ModeSticky, 0o644), ""},
		{"private", mk("d", 0o755, 0o644), ""},
	} {
		_, why := CommandLine("core.sensor.shell", nil, "", "", tc.path)
		if tc.want == "" && why != "" || tc.want != "" && !strings.Contains(why, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, why, tc.want)
		}
	}
}
