// Command mangen writes attunectl's man pages: one per command
// (attunectl.1, attunectl-worker-list.1, …) and one per concept topic of
// `attunectl help` (attunectl-placement.7, …), from the same command tree
// and topic files the binary serves, so the pages cannot drift from
// --help. The release runs it before packaging:
//
//	go run ./cmd/mangen manpages
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/attune-automation/attunectl/pkg/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mangen DIR   (writes attunectl's man pages into DIR)")
		os.Exit(2)
	}
	n, err := writeManPages(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mangen: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d man pages to %s\n", n, os.Args[1])
}

// writeManPages writes a man page (section 1) for every command of
// attunectl into dir, and one (section 7) for every concept topic, named
// attunectl-TOPIC.7; it returns how many it wrote.
func writeManPages(dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("creating %s: %w", dir, err)
	}
	root := cli.NewRootCommand(cli.NewApp())
	hideTopics(root)
	header := &doc.GenManHeader{Title: "ATTUNECTL", Section: "1", Source: "attunectl", Manual: "attunectl manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return 0, fmt.Errorf("writing the command pages: %w", err)
	}
	for _, t := range cli.Topics() {
		page := &cobra.Command{Use: "attunectl-" + t.Name, Short: t.Title, Long: t.Text, DisableAutoGenTag: true}
		h := &doc.GenManHeader{Title: strings.ToUpper("attunectl-" + t.Name), Section: "7", Source: "attunectl", Manual: "attunectl manual"}
		f, err := os.Create(filepath.Join(dir, "attunectl-"+t.Name+".7"))
		if err != nil {
			return 0, err
		}
		err = doc.GenMan(page, h, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, fmt.Errorf("writing the page of topic %s: %w", t.Name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	return len(entries), err
}

// hideTopics keeps the topics out of the command pages (they get pages of
// their own, in section 7).
func hideTopics(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.IsAdditionalHelpTopicCommand() {
			root.RemoveCommand(c)
		}
	}
}
