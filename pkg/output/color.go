package output

import (
	"os"

	"github.com/fatih/color"
	"golang.org/x/term"
)

// IsTerminal reports whether w (or r: any stream) is a terminal.
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ColorEnabled decides colour for a stream: only on a terminal, never when
// --no-color is given or NO_COLOR is set (any value, per no-color.org), and
// not when TERM is "dumb". lookupEnv reads the environment of the
// invocation (the App's, so that tests can set it); nil reads the process's.
func ColorEnabled(terminal, noColor bool, lookupEnv func(string) (string, bool)) bool {
	if noColor || !terminal {
		return false
	}
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if _, set := lookupEnv("NO_COLOR"); set {
		return false
	}
	if term, _ := lookupEnv("TERM"); term == "dumb" {
		return false
	}
	return true
}

// Color names a colour of the palette; NoColor prints plain text.
type Color int

// The palette's colours and what they mean.
const (
	NoColor Color = iota
	Green         // healthy: active, available, applied
	Yellow        // needs a look soon: late heartbeats, pending migrations
	Red           // failures: stale, unavailable
	Dim           // no longer matters much: inactive
	Bold          // headings
)

// Paint colours s with c.
func (p Palette) Paint(c Color, s string) string {
	switch c {
	case Green:
		return p.Green(s)
	case Yellow:
		return p.Yellow(s)
	case Red:
		return p.Red(s)
	case Dim:
		return p.Dim(s)
	case Bold:
		return p.Bold(s)
	}
	return s
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
