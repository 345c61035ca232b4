package cli

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attune-automation/attunectl/pkg/manifest"
)

// topicFiles are the concept topics `attunectl help TOPIC` prints, as
// `go help modules` does: Markdown kept next to the code that the topic
// describes, embedded in the binary and shipped in the man pages. The
// first line of each ("# Title") is the topic's one-line summary.
//
//go:embed topics/*.md
var topicFiles embed.FS

// Topic is one concept topic: its name (the file name without .md), its
// title and its Markdown text without the title line.
type Topic struct {
	Name, Title, Text string
}

// Topics lists the concept topics in name order.
func Topics() []Topic {
	entries, err := topicFiles.ReadDir("topics")
	if err != nil {
		panic(err) // embedded at build time
	}
	var out []Topic
	for _, e := range entries {
		b, err := topicFiles.ReadFile(path.Join("topics", e.Name()))
		if err != nil {
			panic(err)
		}
		title, text, _ := strings.Cut(string(b), "\n")
		out = append(out, Topic{
			Name:  strings.TrimSuffix(e.Name(), ".md"),
			Title: strings.TrimSpace(strings.TrimPrefix(title, "#")),
			Text:  strings.TrimSpace(text) + "\n",
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// newTopicCmds makes each topic an additional help topic of cobra's: a
// command that does not run, listed under "Additional help topics" and
// printed by `attunectl help TOPIC`.
func newTopicCmds() []*cobra.Command {
	var out []*cobra.Command
	for _, t := range Topics() {
		out = append(out, &cobra.Command{
			Use:   t.Name,
			Short: t.Title,
			Long:  t.Title + "\n\n" + t.Text,
		})
	}
	return out
}

// newHelpCmd is `attunectl help [COMMAND | TOPIC]`: cobra's help command,
// except that a name that is neither a command nor a topic is bad input
// (exit 2) with the nearest names, not the root's usage.
func newHelpCmd() *cobra.Command {
	var topicNames []string
	for _, t := range Topics() {
		topicNames = append(topicNames, t.Name)
	}
	return &cobra.Command{
		Use:   "help [COMMAND | TOPIC]",
		Short: "Help about any command, or a concept topic",
		Long: `Help about any command (attunectl help worker list), or one of the concept
topics listed under "Additional help topics" (attunectl help placement):
what attunectl does, how, and what was measured.`,
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil || cmd == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
					if strings.HasPrefix(sub.Name(), toComplete) {
						out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
					}
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				name := strings.Join(args, " ")
				msg := fmt.Sprintf("no command or help topic %q", name)
				var names []string
				for _, sub := range c.Root().Commands() {
					names = append(names, sub.Name())
				}
				if s := manifest.Nearest(args[len(args)-1], names, 0); s != "" {
					msg += fmt.Sprintf(": did you mean %s?", s)
				}
				return usageErrorf("%s (the topics are %s; see `attunectl help`)", msg, strings.Join(topicNames, ", "))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}
