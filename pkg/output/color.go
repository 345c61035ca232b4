package output

import (
	"io"
	"os"

	"github.com/fatih/color"
	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ColorEnabled decides colour for writer w: only on a terminal, never when
// --no-color is given or NO_COLOR is set (any value, per no-color.org), and
// not when TERM is "dumb".
func ColorEnabled(w io.Writer, noColor bool) bool {
	if noColor {
		return false
	}
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	if os.Getenv("TERM") == "dumb" {
		return false
	}
	return IsTerminal(w)
}

// Palette colours words for a table. The zero value prints plain text, so
// commands and golden tests can pass Palette{} for no colour.
type Palette struct {
	On bool
}

func (p Palette) paint(attr color.Attribute, s string) string {
	if !p.On || s == "" {
		return s
	}
	c := color.New(attr)
	c.EnableColor()
	return c.Sprint(s)
}

// Green marks healthy states (active, available).
func (p Palette) Green(s string) string { return p.paint(color.FgGreen, s) }

// Yellow marks states that need a look soon (late heartbeats).
func (p Palette) Yellow(s string) string { return p.paint(color.FgYellow, s) }

// Red marks failures (stale, unavailable).
func (p Palette) Red(s string) string { return p.paint(color.FgRed, s) }

// Dim marks what no longer matters much (inactive workers).
func (p Palette) Dim(s string) string { return p.paint(color.Faint, s) }

// Bold marks headings.
func (p Palette) Bold(s string) string { return p.paint(color.Bold, s) }
