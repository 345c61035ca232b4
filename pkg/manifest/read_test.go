package manifest

import (
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"s.json", `[{"ref": "a.b"}]`, ""},
		{"s.json", "[{\"ref\": \"a.b\",}]", "line 1, column 16"},
		{"s.JSON", "{\"ref\": \"a.b\"}\n// comment\n", "line 2, column 1"},
		{"s.json", "{ref: a.b}", "line 1, column 2"},
		{"s.yaml", "[{ref: a.b,}]", ""},
		{"-", "[{\"ref\": \"a.b\",}]", ""},
	}
	for _, tt := range tests {
		got := CheckJSON(tt.name, []byte(tt.data))
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("CheckJSON(%q, %q) = %q, want %q", tt.name, tt.data, got, tt.want)
		}
	}
}
