package embeddedpg

import (
	"fmt"
	"os"
	"strings"
)

// startError adds the end of the server log to a failed start.
func (s *Server) startError(err error) error {
	return fmt.Errorf("starting postgresql in %s: %w%s\n(fix what the log reports and try again)", s.opts.DataDir, err, s.logTail())
}

// logTail is the end of the server log, formatted to follow an error.
func (s *Server) logTail() string {
	tail := readTail(s.opts.LogFile, 20)
	if tail == "" {
		return fmt.Sprintf("\nserver log %s is empty or unreadable", s.opts.LogFile)
	}
	return fmt.Sprintf("\nlast lines of the server log %s:\n%s", s.opts.LogFile, indent(tail))
}

// readTail returns the last n lines of a file (at most 16 KiB of it).
func readTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 16 << 10
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := fi.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, fi.Size()-off)
	k, _ := f.ReadAt(buf, off)
	return lastLines(string(buf[:k]), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  | " + strings.ReplaceAll(s, "\n", "\n  | ")
}
