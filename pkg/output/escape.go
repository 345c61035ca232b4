package output

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape makes s safe to print on a terminal: control characters from
// database values (ESC, BEL, backspace, C1 controls, …) are shown as Go
// escapes (\x1b, \a, \u009b) instead of being sent raw, so that a worker
// named "\x1b]0;owned\a" cannot retitle, clear or recolour the operator's
// terminal, and bidi formatting characters (U+202E …) likewise, so that a
// value cannot reorder what is shown around it. Line breaks and tabs
// become blanks, as a table cell is one line.
// Invalid UTF-8 bytes are shown as \xNN. JSON and YAML never pass through
// it: they escape for themselves and stay exact.
func Escape(s string) string {
	if !needsEscape(s, false) {
		return s
	}
	return escape(s, false)
}

// EscapeText is Escape for multi-line text such as an error message:
// newlines and tabs are kept, every other control character is escaped.
func EscapeText(s string) string {
	if !needsEscape(s, true) {
		return s
	}
	return escape(s, true)
}

func needsEscape(s string, keepLines bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n' || c == '\t':
			if !keepLines {
				return true
			}
		case c < ' ' || c == 0x7f || c >= 0x80:
			if c >= 0x80 {
				// Multi-byte: only C1 controls and invalid bytes need escaping.
				r, size := utf8.DecodeRuneInString(s[i:])
				if r == utf8.RuneError && size == 1 || isC1(r) || isBidi(r) {
					return true
				}
				i += size - 1
				continue
			}
			return true
		}
	}
	return false
}

func isC1(r rune) bool { return r >= 0x80 && r <= 0x9f }

func escape(s string, keepLines bool) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case s[i:min(i+2, len(s))] == "\r\n" && !keepLines:
			b.WriteByte(' ')
			size = 2
		case r == '\n' || r == '\t' || r == '\r' && !keepLines:
			if keepLines {
				b.WriteRune(r)
			} else {
				b.WriteByte(' ')
			}
		case r < ' ' || r == 0x7f:
			switch r {
			case '\a':
				b.WriteString(`\a`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\v':
				b.WriteString(`\v`)
			case '\r':
				b.WriteString(`\r`)
			default:
				fmt.Fprintf(&b, `\x%02x`, r)
			}
		case isC1(r), isBidi(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
