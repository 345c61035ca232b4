package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/cli"
)

// TestEveryCommandAndTopicHasAPage: the man pages the packages ship cover
// every command (section 1) and every concept topic (section 7), with the
// text the binary serves.
func TestEveryCommandAndTopicHasAPage(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeManPages(dir); err != nil {
		t.Fatal(err)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.IsAdditionalHelpTopicCommand() || !c.IsAvailableCommand() && c.HasParent() {
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("no page for %q: %v", c.CommandPath(), err)
		} else if !strings.Contains(string(b), strings.Fields(c.Short)[0]) {
			t.Errorf("%s does not hold the command's summary %q", name, c.Short)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cli.NewRootCommand(cli.NewApp()))
	for _, tp := range cli.Topics() {
		b, err := os.ReadFile(filepath.Join(dir, "attunectl-"+tp.Name+".7"))
		if err != nil {
			t.Errorf("no page for topic %s: %v", tp.Name, err)
			continue
		}
		if !strings.Contains(string(b), strings.Fields(tp.Title)[0]) {
			t.Errorf("the page of topic %s lacks its title %q", tp.Name, tp.Title)
		}
	}
}
