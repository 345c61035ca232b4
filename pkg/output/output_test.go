package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAgeAndDuration(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct {
		t    *time.Time
		want string
	}{
		{nil, "never"},
		{&time.Time{}, "never"},
		{at(300 * time.Millisecond), "just now"},
		{at(12 * time.Second), "12s ago"},
		{at(5 * time.Minute), "5m ago"},
		{at(5*time.Minute + 12*time.Second), "5m12s ago"},
		{at(3*time.Hour + 4*time.Minute), "3h4m ago"},
		{at(50 * time.Hour), "2d2h ago"},
		{at(72 * time.Hour), "3d ago"},
		{at(-7 * time.Second), "in 7s"},
	}
	for _, tt := range tests {
		if got := Age(now, tt.t); got != tt.want {
			t.Errorf("Age(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
	if got := Duration(250 * time.Millisecond); got != "250ms" {
		t.Errorf("Duration(250ms) = %q", got)
	}
}

func TestParseFormat(t *testing.T) {
	if f, err := ParseFormat("", Table, JSON); err != nil || f != Table {
		t.Errorf("empty: %v %v", f, err)
	}
	if f, err := ParseFormat("json", Table, JSON); err != nil || f != JSON {
		t.Errorf("json: %v %v", f, err)
	}
	_, err := ParseFormat("csv", Table, Wide, JSON)
	if err == nil || err.Error() != `unknown output format "csv": use one of table, wide, json` {
		t.Errorf("csv: %v", err)
	}
}

// TestTableAlignsColouredAndWideCells checks that colour escapes and wide
// runes do not break the columns, and that no line ends in blanks.
func TestTableAlignsColouredAndWideCells(t *testing.T) {
	var buf bytes.Buffer
	p := Palette{On: true}
	tb := NewTable(&buf, "NAME", "STATUS", "HOST")
	tb.Append("sensor-a", p.Green("active"), "h1")
	tb.Append("sensor-日本", p.Red("stale"), "")
	tb.Append("x", "", "h3", "dropped extra cell")
	tb.Append("multi\nline", "inactive")
	if err := tb.Render(); err != nil {
		t.Fatal(err)
	}
	plain := stripANSI(buf.String())
	want := "NAME          STATUS     HOST\n" +
		"sensor-a      active     h1\n" +
		"sensor-日本   stale\n" +
		"x                        h3\n" +
		"multi line    inactive\n"
	if plain != want {
		t.Errorf("table:\n%s\nwant:\n%s", plain, want)
	}
	if !strings.Contains(buf.String(), "\x1b[32mactive") {
		t.Errorf("colour lost: %q", buf.String())
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing blank in %q", line)
		}
	}
}

func TestWriteYAMLUsesJSONNames(t *testing.T) {
	var buf bytes.Buffer
	v := struct {
		LastHeartbeat string `json:"last_heartbeat"`
		Skip          string `json:"-"`
	}{"2026-11-26T12:00:00Z", "x"}
	if err := WriteYAML(&buf, v); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "last_heartbeat: \"2026-11-26T12:00:00Z\"\n" {
		t.Errorf("yaml = %q", buf.String())
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Bidi formatting characters are shown as escapes wherever a table or a
// name line shows a value, as C1 controls are.
func TestEscapeBidi(t *testing.T) {
	for in, want := range map[string]string{
		"invoice\u202egpj.exe": `invoice\u202egpj.exe`,
		"a\u2066b\u2069c":      `a\u2066b\u2069c`,
		"mark\u200f":           `mark\u200f`,
		"日本 plain":             "日本 plain",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// MarshalJSON is encoding/json's indented output for ordinary values,
// escapes C1 and bidi characters, and stops indenting past MaxJSONDepth:
// a payload nested ten thousand levels deep prints at about its own size.
func TestMarshalJSONSafeAndBounded(t *testing.T) {
	v := map[string]any{"name": "w-1", "list": []any{1, "two", map[string]any{}, []any{}}, "nested": map[string]any{"a": []any{true, nil}}}
	want, _ := json.MarshalIndent(v, "", "  ")
	if got, err := MarshalJSON(v, "", "  "); err != nil || string(got) != string(want) {
		t.Errorf("MarshalJSON:\n%s\nwant (encoding/json):\n%s", got, want)
	}
	got, _ := MarshalJSON(map[string]string{"s": "csi\u009b31m rlo\u202e"}, "", "")
	if string(got) != `{"s":"csi\u009b31m rlo\u202e"}` {
		t.Errorf("escapes: %s", got)
	}
	deep := json.RawMessage(strings.Repeat("[", 5000) + strings.Repeat("]", 5000))
	out, err := MarshalJSON(map[string]any{"payload": deep}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > 4*len(deep) {
		t.Errorf("a payload of %d bytes nested 5,000 deep printed as %d bytes", len(deep), len(out))
	}
	var back any
	if err := json.Unmarshal(out, &back); err != nil {
		t.Errorf("the bounded output is not JSON: %v", err)
	}
}
