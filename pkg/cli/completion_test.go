package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCompletionsUpToDate fails when the committed completion scripts no
// longer match the command tree. Regenerate them with:
//
//	go test ./pkg/cli -run TestCompletionsUpToDate -update
func TestCompletionsUpToDate(t *testing.T) {
	for _, c := range []struct{ shell, file string }{
		{"bash", "attunectl.bash"},
		{"zsh", "_attunectl"},
		{"fish", "attunectl.fish"},
		{"powershell", "attunectl.ps1"},
	} {
		t.Run(c.shell, func(t *testing.T) {
			var out, errOut bytes.Buffer
			app := &App{In: bytes.NewReader(nil), Out: &out, Err: &errOut, Environ: nil}
			if code := Execute(t.Context(), app, []string{"completion", c.shell}); code != 0 {
				t.Fatalf("completion %s: exit %d: %s", c.shell, code, errOut.String())
			}
			path := filepath.Join("..", "..", "completions", c.file)
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (generate it: go test ./pkg/cli -run TestCompletionsUpToDate -update)", err)
			}
			if !bytes.Equal(want, out.Bytes()) {
				t.Fatalf("%s is out of date with the command tree; regenerate: go test ./pkg/cli -run TestCompletionsUpToDate -update", path)
			}
		})
	}
}
