// Package output prints command results: a table for people (with a wide
// variant that reveals extra columns), JSON and YAML with stable field names
// for machines, and bare names for scripts. Colour is used only on a
// terminal and never when NO_COLOR or --no-color is set.
package output

import (
	"io"
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

// WriteYAML writes v as YAML. Values are converted through JSON first, so
// the field names are the json tags, identical in both formats.
func WriteYAML(w io.Writer, v any) error {
	generic, err := jsonGeneric(v)
	if err != nil {
		return err
	}
	return encodeYAML(w, generic)
}

// Write writes v in a machine format: JSON or YAML.
func Write(w io.Writer, f Format, v any) error {
	if f == YAML {
		return WriteYAML(w, v)
	}
	return WriteJSON(w, v)
}
