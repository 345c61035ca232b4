// Package manifest is the one strict decoder of attunectl's inputs
// (runtime and sensor manifests, and what comes after them): it reads
// YAML (JSON is YAML) node by node and reports every problem in one pass,
// each with its path and line — unknown keys with the nearest known one,
// duplicate keys, wrong types, aliases within a budget — holds a file that
// says it is JSON to JSON's grammar, and suggests the nearest name for a
// typo wherever attunectl takes names (config keys, help topics).
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
