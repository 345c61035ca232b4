package testsupport

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Golden compares got with the golden file at path. With update (a test
// binary's -update flag) it first rewrites the file from got. regenerate
// is the command that rewrites it, for the message when it is missing.
func Golden(t testing.TB, path string, got []byte, update bool, regenerate string) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: %s)", err, regenerate)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the output (rewrite with -update if intended)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
