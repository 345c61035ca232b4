// Package jsontext reads and writes JSON text without reflection, byte for
// byte as encoding/json does, for listings of a million rows.
//
// Reader reads the JSON that PostgreSQL prints for jsonb values, but only
// what it can read exactly as json.Unmarshal would: strings without
// escapes, well-formed numbers; every caller falls back to encoding/json for
// the rest. The Append functions write as encoding/json's Encoder with
// SetIndent("  ", "  ") does (-o json). Tests compare both with
// encoding/json on corpora and fuzzed input.
package jsontext

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, escaped as encoding/json
// escapes it: quote, backslash and control characters always (\b, \f, \n,
// \r, \t by name), <, > and & only with html (json.Marshal's default; the
// Encoder of -o json has it off), U+2028 and U+2029 always, and each byte of
// invalid UTF-8 as \ufffd; and, as attunectl's -o json writes every string
// (output.MarshalJSON), C1 controls and bidi formatting characters as \u
// escapes, which a terminal does not act on.
func AppendString[S []byte | string](b []byte, s S, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		case r >= 0x80 && r <= 0x9f, r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			// C1 controls and bidi formatting characters: the same value
			// for a JSON reader, nothing a terminal acts on.
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendFloat appends f as encoding/json writes a float64: the
// shortest form that reads back the same, in exponent form below 1e-6 and
// from 1e21 (as JavaScript does). NaN and infinities, which JSON cannot
// hold, are written as null.
func AppendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1] // e-07 is written e-7
			b = b[:n-1]
		}
	}
	return b
}

// AppendIndent appends a newline and the indentation of depth (two
// blanks for each level, as -o json indents).
func AppendIndent(b []byte, depth int) []byte {
	b = append(b, '\n')
	for range depth {
		b = append(b, ' ', ' ')
	}
	return b
}

// AppendGeneric appends the JSON value raw (a document as PostgreSQL
// prints jsonb) as encoding/json would write it after decoding it into an
// `any` (objects become maps, written with their keys sorted; numbers
// become float64), HTML not escaped, nested at depth. ok is false, and
// nothing is appended, for what it cannot write exactly so (a string with
// an escape, a number out of float64's range, a key twice, anything that
// is not JSON): the caller then decodes raw and encodes it with
// encoding/json.
func AppendGeneric(b []byte, raw []byte, depth int) (out []byte, ok bool) {
	start := len(b)
	r := Reader{b: raw}
	b, ok = r.appendValue(b, depth, 0)
	if !ok || !r.End() {
		return b[:start], false
	}
	return b, true
}

// Reader reads one JSON document from its start.
type Reader struct {
	b []byte
	i int
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) space() {
	for r.i < len(r.b) && (r.b[r.i] == ' ' || r.b[r.i] == '\t' || r.b[r.i] == '\n' || r.b[r.i] == '\r') {
		r.i++
	}
}

// Peek returns the next byte after blanks, 0 at the end.
func (r *Reader) Peek() byte {
	r.space()
	if r.i == len(r.b) {
		return 0
	}
	return r.b[r.i]
}

// Eat consumes c, after blanks, when it comes next.
func (r *Reader) Eat(c byte) bool {
	if r.Peek() != c {
		return false
	}
	r.i++
	return true
}

// End reports whether only blanks are left.
func (r *Reader) End() bool {
	r.space()
	return r.i == len(r.b)
}

// PlainBytes is PlainString without the copy: the bytes are the input's.
func (r *Reader) PlainBytes() ([]byte, bool) { return r.plainBytes() }

// PlainStringOf is PlainString with str making the string from its bytes,
// as StringListOf.
func (r *Reader) PlainStringOf(str func([]byte) string) (string, bool) {
	b, ok := r.plainBytes()
	if !ok {
		return "", false
	}
	return str(b), true
}

// Number reads a number's text, checked against JSON's grammar.
func (r *Reader) Number() ([]byte, bool) {
	r.space()
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := r.i
	r.digits()
	if r.i == digits || (r.b[digits] == '0' && r.i-digits > 1) {
		return nil, false
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if frac := r.i; r.digits() == frac {
			return nil, false
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if exp := r.i; r.digits() == exp {
			return nil, false
		}
	}
	return r.b[start:r.i], true
}

func (r *Reader) digits() int {
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	return r.i
}

// StringListOf is StringList with str making each element's string from
// its bytes (which it must not keep): a caller that meets the same strings
// on every row can share one copy of each.
func (r *Reader) StringListOf(str func([]byte) string) ([]string, bool) {
	if !r.Eat('[') {
		return nil, false
	}
	list := make([]string, 0, 4) // a worker has a handful of runtimes
	if r.Eat(']') {
		return list, true
	}
	for {
		b, ok := r.plainBytes()
		if !ok {
			return nil, false
		}
		list = append(list, str(b))
		if r.Eat(']') {
			return list, true
		}
		if !r.Eat(',') {
			return nil, false
		}
	}
}

// StringMapOf is StringMap with str making each key's and value's string
// from its bytes, as StringListOf.
func (r *Reader) StringMapOf(str func([]byte) string) (map[string]string, bool) {
	if !r.Eat('{') {
		return nil, false
	}
	m := map[string]string{}
	if r.Eat('}') {
		return m, true
	}
	for {
		kb, ok := r.plainBytes()
		if !ok || !r.Eat(':') {
			return nil, false
		}
		k := str(kb)
		vb, ok := r.plainBytes()
		if _, dup := m[k]; !ok || dup {
			return nil, false
		}
		m[k] = str(vb)
		if r.Eat('}') {
			return m, true
		}
		if !r.Eat(',') {
			return nil, false
		}
	}
}

// maxGenericDepth bounds nesting (encoding/json allows 10,000 levels; a
// worker's meta needs a handful): deeper documents go the slow way.
const maxGenericDepth = 100

// plainBytes is PlainString without the copy.
func (r *Reader) plainBytes() ([]byte, bool) {
	if r.Peek() != '"' {
		return nil, false
	}
	start := r.i + 1
	i := start
	for i < len(r.b) && r.b[i] != '"' {
		if c := r.b[i]; c == '\\' || c < 0x20 {
			return nil, false
		}
		i++
	}
	if i == len(r.b) || !utf8.Valid(r.b[start:i]) {
		return nil, false
	}
	r.i = i + 1
	return r.b[start:i], true
}

// literal reads true, false or null.
func (r *Reader) literal() ([]byte, bool) {
	for _, lit := range []string{"true", "false", "null"} {
		if len(r.b)-r.i >= len(lit) && string(r.b[r.i:r.i+len(lit)]) == lit {
			r.i += len(lit)
			return r.b[r.i-len(lit) : r.i], true
		}
	}
	return nil, false
}

// appendValue writes the next value as encoding/json writes it decoded
// into an any, at depth; level counts the containers around it.
func (r *Reader) appendValue(b []byte, depth, level int) ([]byte, bool) {
	switch c := r.Peek(); {
	case c == '{':
		return r.appendObject(b, depth, level+1)
	case c == '[':
		if level+1 > maxGenericDepth {
			return b, false
		}
		r.i++
		if r.Eat(']') {
			return append(b, '[', ']'), true
		}
		b = append(b, '[')
		for {
			var ok bool
			b = AppendIndent(b, depth+1)
			if b, ok = r.appendValue(b, depth+1, level+1); !ok {
				return b, false
			}
			if r.Eat(']') {
				break
			}
			if !r.Eat(',') {
				return b, false
			}
			b = append(b, ',')
		}
		b = AppendIndent(b, depth)
		return append(b, ']'), true
	case c == '"':
		s, ok := r.plainBytes()
		return AppendString(b, s, false), ok
	case c == '-' || c >= '0' && c <= '9':
		n, ok := r.Number()
		if !ok {
			return b, false
		}
		f, err := strconv.ParseFloat(string(n), 64)
		return AppendFloat(b, f), err == nil
	}
	lit, ok := r.literal()
	return append(b, lit...), ok
}

// member is one member of an object: its key and where its value is.
type member struct {
	key        []byte
	start, end int
}

// appendObject writes an object with its members ordered by key, as
// encoding/json orders a map's: it reads the members first (their values
// only checked for their shape), then writes each value from its place.
func (r *Reader) appendObject(b []byte, depth, level int) ([]byte, bool) {
	if level > maxGenericDepth {
		return b, false
	}
	r.i++
	if r.Eat('}') {
		return append(b, '{', '}'), true
	}
	var spare [16]member
	members := spare[:0]
	for {
		k, ok := r.plainBytes()
		if !ok || !r.Eat(':') {
			return b, false
		}
		r.space()
		m := member{key: k, start: r.i}
		if !r.skipValue(level) {
			return b, false
		}
		m.end = r.i
		members = append(members, m)
		if r.Eat('}') {
			break
		}
		if !r.Eat(',') {
			return b, false
		}
	}
	// Insertion sort: objects are small, and it allocates nothing.
	for i := 1; i < len(members); i++ {
		for j := i; j > 0 && bytes.Compare(members[j-1].key, members[j].key) > 0; j-- {
			members[j-1], members[j] = members[j], members[j-1]
		}
	}
	b = append(b, '{')
	for i, m := range members {
		if i > 0 {
			if bytes.Equal(members[i-1].key, m.key) {
				return b, false // a map keeps one of them
			}
			b = append(b, ',')
		}
		b = AppendIndent(b, depth+1)
		b = AppendString(b, m.key, false)
		b = append(b, ':', ' ')
		sub := Reader{b: r.b[:m.end], i: m.start}
		var ok bool
		if b, ok = sub.appendValue(b, depth+1, level); !ok || !sub.End() {
			return b, false
		}
	}
	b = AppendIndent(b, depth)
	return append(b, '}'), true
}

// skipValue moves past the next value, checking its shape only (plain
// strings, numbers, literals, brackets): appendValue checks the rest when
// it writes the value.
func (r *Reader) skipValue(level int) bool {
	switch c := r.Peek(); {
	case c == '{' || c == '[':
		if level+1 > maxGenericDepth {
			return false
		}
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		r.i++
		if r.Eat(end) {
			return true
		}
		for {
			if c == '{' {
				if _, ok := r.plainBytes(); !ok || !r.Eat(':') {
					return false
				}
			}
			if !r.skipValue(level + 1) {
				return false
			}
			if r.Eat(end) {
				return true
			}
			if !r.Eat(',') {
				return false
			}
		}
	case c == '"':
		_, ok := r.plainBytes()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		_, ok := r.Number()
		return ok
	}
	_, ok := r.literal()
	return ok
}
