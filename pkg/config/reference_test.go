package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReferenceListsEveryKey keeps the configuration reference (`attunectl
// help configuration`) in step with the Config struct: every key and its
// environment variable must appear in a row of its table.
func TestReferenceListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "cli", "topics", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `") {
			cells := strings.Split(line, "|")
			if len(cells) > 2 {
				rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = line
			}
		}
	}
	for _, key := range Keys() {
		row, ok := rows[key]
		if !ok {
			t.Errorf("the configuration reference has no row for %s", key)
			continue
		}
		env := EnvName(key)
		if key == "sensor.capabilities" {
			env = EnvName("sensor.capabilities.runtimes")
		}
		if !strings.Contains(row, "`"+env+"`") {
			t.Errorf("the configuration reference's row for %s does not name %s", key, env)
		}
	}
}
