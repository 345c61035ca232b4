package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// MaxJSONDepth is how deep attunectl indents JSON it prints; what is nested
// deeper is printed compact, on one line. A payload nested ten thousand
// levels deep (20 KB of "[[[[…") would otherwise print as hundreds of
// megabytes of indentation.
const MaxJSONDepth = 32

// isBidi reports the Unicode bidirectional formatting characters
// (embeddings, overrides, isolates, marks): shown raw, a value holding one
// reorders what the terminal displays around it ("Trojan Source").
func isBidi(r rune) bool {
	switch {
	case r == 0x061c, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// MarshalJSON is v as JSON, indented with indent after prefix down to
// MaxJSONDepth levels and compact below (all compact, on one line, when
// both are empty), with every C1 control and bidi
// formatting character written as a \u escape: the same value for a JSON
// reader, and nothing a terminal acts on.
func MarshalJSON(v any, prefix, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	compact := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	var out bytes.Buffer
	out.Grow(len(compact) * 2)
	indentJSON(&out, compact, prefix, indent, MaxJSONDepth)
	return out.Bytes(), nil
}

// WriteJSON writes v as indented JSON followed by a newline (MarshalJSON).
func WriteJSON(w io.Writer, v any) error {
	b, err := MarshalJSON(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// indentJSON writes the compact JSON src to out as json.Indent does, but
// only down to maxDepth levels (deeper values stay compact), escaping C1
// controls and bidi characters inside strings.
func indentJSON(out *bytes.Buffer, src []byte, prefix, indent string, maxDepth int) {
	depth := 0
	if indent == "" && prefix == "" {
		maxDepth = -1 // compact: one line
	}
	newline := func() {
		out.WriteByte('\n')
		out.WriteString(prefix)
		for range depth {
			out.WriteString(indent)
		}
	}
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			switch {
			case c == '\\':
				out.WriteByte(c)
				i++
				out.WriteByte(src[i])
			case c == '"':
				out.WriteByte(c)
				inString = false
			case c >= 0x80:
				r, size := utf8.DecodeRune(src[i:])
				if isC1(r) || isBidi(r) {
					fmt.Fprintf(out, `\u%04x`, r)
				} else {
					out.Write(src[i : i+size])
				}
				i += size - 1
			default:
				out.WriteByte(c)
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			out.WriteByte(c)
		case '{', '[':
			out.WriteByte(c)
			depth++
			// An empty object or array stays on one line.
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				continue
			}
			if depth <= maxDepth {
				newline()
			}
		case '}', ']':
			depth--
			if src[i-1] != '{' && src[i-1] != '[' && depth < maxDepth && maxDepth >= 0 {
				newline()
			}
			out.WriteByte(c)
		case ',':
			out.WriteByte(c)
			if depth <= maxDepth {
				newline()
			}
		case ':':
			out.WriteByte(c)
			if depth <= maxDepth {
				out.WriteByte(' ')
			}
		default:
			out.WriteByte(c)
		}
	}
}
