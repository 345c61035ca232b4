package workers

import (
	"encoding/json"
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
