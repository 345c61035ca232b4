package cli

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The command layer talks to the database only through the packages that
// own the tables: no driver, no migration library, no SQL of its own.
func TestCommandLayerHasNoDatabaseCode(t *testing.T) {
	forbidden := []string{"github.com/jackc/pgx", "github.com/pressly/goose"}
	sql := regexp.MustCompile(`(?i)\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|LOCK\s+TABLE|pg_locks)\b`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, p := range forbidden {
				if strings.HasPrefix(path, p) {
					t.Errorf("%s imports %s: move the code to the package that owns the table (pkg/workers, pkg/runtimes, pkg/database)", name, path)
				}
			}
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := sql.Find(src); m != nil {
			t.Errorf("%s holds SQL (%q): move it to the package that owns the table", name, m)
		}
	}
	if len(files) < 10 {
		t.Fatalf("found only %d files: run from pkg/cli", len(files))
	}
}
