package jsontext

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// encode is what -o json writes for v: encoding/json's Encoder, HTML not
// escaped, indented by two blanks, without the final newline.
func encode(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return safe(string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))))
}

// safe writes the C1 controls and bidi formatting characters of encoding/json's
// output as \u escapes, as attunectl's -o json does.
func safe(js string) string {
	var b strings.Builder
	for _, r := range js {
		if r >= 0x80 && r <= 0x9f || r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "\b\f\n\r\t\x00\x1f\x7f", "<a href=\"x\">&amp;</a>", "é日本\u2028\u2029", "\xff\xfe bad", "\xe2\x80", "c1 \u009b31m", "bidi \u202e txt.exe \u2066"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendString(nil, s, false)), encode(t, s); got != want {
			t.Fatalf("%q: AppendString %s, encoding/json %s", s, got, want)
		}
		want, _ := json.Marshal(s)
		if got := string(AppendString(nil, s, true)); got != safe(string(want)) {
			t.Fatalf("%q: AppendString(html) %s, json.Marshal %s", s, got, want)
		}
	})
}

func FuzzAppendFloat(f *testing.F) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -1.5, 1e-7, 1e-6, 123456789, 1e20, 1e21, 1e300, 5e-324, 672.932, math.MaxFloat64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		want, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(AppendFloat(nil, x)); got != string(want) {
			t.Fatalf("%v: AppendFloat %s, json.Marshal %s", x, got, want)
		}
	})
}

// FuzzAppendGeneric: wherever AppendGeneric writes a document, it is what
// encoding/json writes after decoding the same bytes into an any.
func FuzzAppendGeneric(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"pid": 1001, "hostname": "host-1", "instance_id": "i-1"}`, `{"b": [1, 2.50, -0, 1e400], "a": {"z": null, "y": true}}`,
		`{"a": 1, "a": 2}`, `{"k": "\n"}`, `{"k": "<&>"}`, `{"é": "日本", "e": "\u2028"}`, `[[[[]]]]`, `{"n": 12345678901234567890}`, `{"n": 1e-7}`,
		`"s"`, `1`, `true`, `nul`, `{"a" 1}`, `{"a": 1,}`, `[1 2]`, `01`, `{"k": "a\u0000"}`, ` {"a" : [ ] } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := AppendGeneric(nil, raw, 0)
		if !ok {
			if len(got) != 0 {
				t.Fatalf("%q: not written, yet %q appended", raw, got)
			}
			return
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%q: AppendGeneric wrote %s, json.Unmarshal fails: %v", raw, got, err)
		}
		if want := encode(t, v); string(got) != want {
			t.Fatalf("%q: AppendGeneric\n%s\nencoding/json\n%s", raw, got, want)
		}
	})
}

// TestAppendGenericNests: a document nested at depth is indented as the
// Encoder indents the same value inside depth levels of objects.
func TestAppendGenericNests(t *testing.T) {
	raw := []byte(`{"b": [1, {"c": "x"}], "a": {}}`)
	got, ok := AppendGeneric([]byte(`{"m": `), raw, 1)
	if !ok {
		t.Fatal("not written")
	}
	got = append(AppendIndent(got, 0), '}')
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	// encode's newlines are not those of `{"m": ` + ... : compare values.
	var back map[string]any
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if want := encode(t, map[string]any{"m": v}); encode(t, back) != want {
		t.Fatalf("nested: %s", got)
	}
	want := "{\"m\": {\n    \"a\": {},\n    \"b\": [\n      1,\n      {\n        \"c\": \"x\"\n      }\n    ]\n  }\n}"
	if string(got) != want {
		t.Fatalf("nested at depth 1:\n%s\nwant\n%s", got, want)
	}
}
