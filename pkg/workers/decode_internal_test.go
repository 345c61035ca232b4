package workers

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

// FuzzDecodeStringList: wherever the fast decoder of the runtimes says it
// read a list, json.Unmarshal reads the same list from the same bytes.
func FuzzDecodeStringList(f *testing.F) {
	for _, s := range []string{`[]`, `["python"]`, `["built-in sensor", "python", "shell"]`, ` [ "a" , "b" ] `,
		`["a\"b"]`, `["é", "日本"]`, `[1]`, `null`, `["a",]`, `["a"`, `{"a": 1}`, `["a"] x`, "[\"\xff\"]", "[\"a\tb\"]", `[""]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeStringList(b)
		if !ok {
			return
		}
		var want []string
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: fast decoder read %q, json.Unmarshal fails: %v", b, got, err)
		}
		if !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("%q: fast decoder read %#v, json.Unmarshal %#v", b, got, want)
		}
	})
}

// TestDecodeStringListReadsWhatPostgreSQLPrints: the fast path is taken
// for the form jsonb is printed in, and left for what it cannot read exactly.
func TestDecodeStringListReadsWhatPostgreSQLPrints(t *testing.T) {
	for in, want := range map[string][]string{`[]`: {}, `["python"]`: {"python"}, `["built-in sensor", "python", "shell"]`: {"built-in sensor", "python", "shell"}} {
		if got, ok := decodeStringList([]byte(in)); !ok || !slices.Equal(got, want) || got == nil {
			t.Errorf("%s: got %#v, %v", in, got, ok)
		}
	}
	for _, in := range []string{`null`, `["a\"b"]`, `[1]`, `["a",]`, `"a"`, "[\"\xff\"]"} {
		if got, ok := decodeStringList([]byte(in)); ok {
			t.Errorf("%s: fast path read %#v; it must leave it to json.Unmarshal", in, got)
		}
	}
}

// FuzzDecodeCapabilities: wherever the fast decoder of capabilities says
// it read them, Capabilities.UnmarshalJSON reads the same from the same bytes.
func FuzzDecodeCapabilities(f *testing.F) {
	for _, s := range []string{`{}`, `{"runtimes": ["built-in sensor", "python"], "sensor_version": "0.1.0", "runtime_versions": {"python": "3.11.7", "node.js": "v20.11.1"}, "heartbeat_interval": 60, "max_concurrent_sensors": 10}`,
		`{"runtimes": [], "detection_source": "env", "heartbeat_interval": 0.5}`, `{"runtimes": null}`, `{"max_concurrent_sensors": 1.5}`,
		`{"max_concurrent_sensors": 1e3}`, `{"heartbeat_interval": 1e400}`, `{"heartbeat_interval": "60"}`, `{"x": 1}`, `{"runtimes": ["a"], "runtimes": ["b"]}`,
		`{"runtime_versions": {}}`, `{"runtime_versions": {"a": "1", "a": "2"}}`, `[]`, `null`, `{"sensor_version": "a\u00e9"}`, `{"max_concurrent_sensors": -0}`,
		`{"max_concurrent_sensors": 99999999999999999999}`, `{"heartbeat_interval": -1}`, `{} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeCapabilities(b)
		if !ok {
			return
		}
		var want Capabilities
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: fast decoder read %+v, UnmarshalJSON fails: %v", b, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast decoder read %#v, UnmarshalJSON %#v", b, got, want)
		}
	})
}

// decodeStringList decodes b, a JSON array of strings as PostgreSQL
// prints jsonb (["a", "b"]), as json.Unmarshal into a []string does: the
// runtimes of every row of a table.
func decodeStringList(b []byte) ([]string, bool) {
	return decodeStringListOf(b, func(b []byte) string { return string(b) })
}

// decodeCapabilities decodes b as Capabilities.UnmarshalJSON does, for
// an object of the known keys with values of their types (what attunectl
// writes); anything else (another key, which goes to Extra, a value of
// another type, null, a key twice) is left to UnmarshalJSON.
func decodeCapabilities(b []byte) (c Capabilities, ok bool) {
	return decodeCapabilitiesOf(b, func(b []byte) string { return string(b) })
}
