// Package output prints command results: a table for people (with a wide
// variant that reveals extra columns), JSON and YAML with stable field names
// for machines, and bare names for scripts. Colour is used only on a
// terminal and never when NO_COLOR or --no-color is set.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Format is an output format chosen with -o.
type Format string

// The output formats. Not every command offers every format.
const (
	Table Format = "table"
	Wide  Format = "wide"
	JSON  Format = "json"
	YAML  Format = "yaml"
	Name  Format = "name"
)

// ParseFormat checks s against the formats a command offers; "" is table.
// An unknown format is an error that lists the valid ones.
func ParseFormat(s string, allowed ...Format) (Format, error) {
	if s == "" {
		s = string(Table)
	}
	names := make([]string, len(allowed))
	for i, f := range allowed {
		if string(f) == s {
			return f, nil
		}
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown output format %q: use one of %s", s, strings.Join(names, ", "))
}

// WriteJSON writes v as indented JSON followed by a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// WriteYAML writes v as YAML. Values are converted through JSON first, so
// the field names are the json tags, identical in both formats.
func WriteYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := yaml.Unmarshal(b, &generic); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	return enc.Close()
}
