package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpTopics: every topic is served by `attunectl help TOPIC` with its
// title and text; a name that is neither a command nor a topic is bad
// input with the nearest name.
func TestHelpTopics(t *testing.T) {
	topics := Topics()
	if len(topics) < 10 {
		t.Fatalf("%d topics; the README names more", len(topics))
	}
	for _, tp := range topics {
		app, out, errOut := testApp("")
		app.Environ = []string{}
		if code := Execute(t.Context(), app, []string{"help", tp.Name}); code != ExitOK {
			t.Fatalf("help %s: exit %d\n%s", tp.Name, code, errOut)
		}
		first, _, _ := strings.Cut(tp.Text, "\n")
		if !strings.HasPrefix(out.String(), tp.Title+"\n") || !strings.Contains(out.String(), first) {
			t.Errorf("help %s printed:\n%.300s", tp.Name, out)
		}
	}
	app, _, errOut := testApp("")
	app.Environ = []string{}
	if code := Execute(t.Context(), app, []string{"help", "placment"}); code != ExitUsage || !strings.Contains(errOut.String(), "did you mean placement?") {
		t.Errorf("help placment: exit %d\n%s", code, errOut)
	}
}

// TestReadmeNamesEveryTopic: the README's "Read more" table lists exactly
// the topics the binary serves.
func TestReadmeNamesEveryTopic(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, more, ok := strings.Cut(string(b), "## Read more")
	if !ok {
		t.Fatal("README.md has no Read more section")
	}
	more, _, _ = strings.Cut(more, "\n## ")
	listed := regexp.MustCompile("(?m)^\\| `([a-z]+)` \\|").FindAllStringSubmatch(more, -1)
	var names []string
	for _, m := range listed {
		names = append(names, m[1])
	}
	var want []string
	for _, tp := range Topics() {
		want = append(want, tp.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("README lists topics %v, the binary serves %v", names, want)
	}
}

// historyWords are words a user of attunectl cannot know: how it was built.
var historyWords = regexp.MustCompile(`(?i)\bissue [0-9]+|\bthe seed\b|\bseed's\b`)

// TestNoHistoryWords: the README, the topics and every help text speak of
// the product and of Attune, never of how they were built.
func TestNoHistoryWords(t *testing.T) {
	texts := map[string]string{}
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	texts["README.md"] = string(b)
	for _, tp := range Topics() {
		texts["topic "+tp.Name] = tp.Title + "\n" + tp.Text
	}
	app, _, _ := testApp("")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		var buf bytes.Buffer
		buf.WriteString(c.Short + "\n" + c.Long + "\n" + c.Example + "\n")
		c.Flags().VisitAll(func(f *pflag.Flag) { buf.WriteString(f.Usage + "\n") })
		texts[c.CommandPath()] = buf.String()
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand(app))
	for where, text := range texts {
		if m := historyWords.FindString(text); m != "" {
			t.Errorf("%s says %q", where, m)
		}
	}
}

// TestReadmeGoldenBlocks: each README block marked <!-- golden: PATH -->
// is that golden file, which the suite's own tests write, so the README's
// sample output cannot drift from what attunectl prints.
func TestReadmeGoldenBlocks(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- golden: (\\S+) -->\n```text\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no golden block")
	}
	for _, m := range blocks {
		want, err := os.ReadFile(filepath.Join("..", "..", m[1]))
		if err != nil {
			t.Fatalf("README names %s: %v", m[1], err)
		}
		if m[2] != string(want) {
			t.Errorf("README's block of %s differs from the file:\n%s\n--- file:\n%s", m[1], m[2], want)
		}
	}
}
