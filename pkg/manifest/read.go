// Package manifest holds what every strict input of attunectl shares:
// reading a manifest file (runtimes, sensors) within a size limit, and
// holding a file that says it is JSON to JSON's own grammar.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// IsJSONName reports whether a file name says its content is JSON.
func IsJSONName(name string) bool {
	return strings.EqualFold(strings.TrimSpace(name[max(0, len(name)-5):]), ".json")
}

// CheckJSON parses data as JSON when name ends in .json and says where the
// first syntax error is ("line 4, column 3: invalid character '}' looking
// for beginning of object key string"). YAML, which attunectl's manifests
// are read with, accepts what JSON refuses (a trailing comma, comments,
// unquoted keys), so a file that calls itself JSON is held to JSON first.
// Other names are not checked ("").
func CheckJSON(name string, data []byte) string {
	if !IsJSONName(name) {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err == nil {
			continue
		}
		off := int(dec.InputOffset())
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			off = int(se.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			// Where the text ends is where it broke: just past its last
			// character.
			off = len(bytes.TrimRight(data, " \t\r\n")) + 1
		}
		// The offset is just past the offending byte.
		at := max(min(off, len(data))-1, 0)
		line := 1 + bytes.Count(data[:at], []byte("\n"))
		col := at - bytes.LastIndexByte(data[:at], '\n')
		return fmt.Sprintf("not valid JSON: line %d, column %d: %v (fix the syntax, or name the file .yaml to write YAML)", line, col, err)
	}
}
