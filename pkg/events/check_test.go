package events

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestOutSchemaForms: a trigger's out_schema as a JSON Schema and in the
// flat form of Attune's trigger YAML (`output:`: field → {type, required})
// both validate a payload; a required field missing or of the wrong type is
// refused in either.
func TestOutSchemaForms(t *testing.T) {
	schemas := map[string]string{
		"json schema": `{"type": "object", "properties": {"severity": {"type": "string", "enum": ["info", "error"]}, "count": {"type": "integer"}}, "required": ["severity"]}`,
		"output map":  `{"severity": {"type": "string", "enum": ["info", "error"], "required": true}, "count": {"type": "integer", "description": "how many"}}`,
	}
	payloads := []struct {
		json string
		ok   bool
	}{
		{`{"severity": "error", "count": 2}`, true},
		{`{"severity": "error"}`, true},
		{`{"count": 2}`, false},
		{`{"severity": "loud"}`, false},
		{`{"severity": "info", "count": "two"}`, false},
	}
	for name, raw := range schemas {
		s, bad := compileSchema("t.x", []byte(raw))
		if s == nil || bad != "" {
			t.Fatalf("%s: %q", name, bad)
		}
		for _, p := range payloads {
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(p.json)))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(doc); (err == nil) != p.ok {
				t.Errorf("%s: %s valid = %v, want %v (%v)", name, p.json, err == nil, p.ok, err)
			}
		}
	}
}
