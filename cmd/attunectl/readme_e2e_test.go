package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// readmeBlock is one fenced ```sh block of the README.
type readmeBlock struct {
	line int
	code string
}

// readmeShellBlocks returns the README's ```sh blocks. Those are the
// commands a reader is meant to paste; ```bash and ```text blocks are
// illustrations (long-running commands, output) and are not run.
func readmeShellBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &readmeBlock{line: n}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestReadmeExamples runs every ```sh block of the README, in order, in one
// directory against one fresh database, as a new user following the README
// would: each block must exit 0 (blocks show expected non-zero statuses
// with `|| …` as a user would script them). `go test` and `go run` lines
// are the developer's and are left to the rest of the suite.
func TestReadmeExamples(t *testing.T) {
	db := dbtest.New(t)
	bin := binary(t)
	dir := t.TempDir()
	blocks := readmeShellBlocks(t)
	if len(blocks) < 8 {
		t.Fatalf("found %d ```sh blocks in README.md; the tour should have more", len(blocks))
	}
	e := dbEnv(t, db, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	ran := 0
	for _, b := range blocks {
		code := b.code
		if strings.Contains(code, "go test") || strings.Contains(code, "go run") || strings.Contains(code, "go install") {
			continue
		}
		ran++
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", code)
		cmd.Dir = dir
		cmd.Env = e
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("README.md:%d: block failed: %v\n--- block:\n%s--- output:\n%s", b.line, err, code, out)
		}
	}
	if ran == 0 {
		t.Fatal("no README block ran")
	}
}
