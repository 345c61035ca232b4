package config

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/attune-automation/attunectl/pkg/manifest"
)

// attunectl's own sections. Keys under them that attunectl does not know
// are reported (a typo such as heartbeat_intervall would otherwise be
// silently ignored); other sections belong to Attune's services and are
// ignored without a word.
var ownSections = map[string]bool{"database": true, "sensor": true, "log": true, "embedded": true}

// attuneSections are the top-level sections of Attune's own services'
// configuration (crates/common/src/config.rs, struct Config, at
// attune-system/attune 03eeaa5b3f0cee74dcc0328b8294e928a4f9f362): a shared
// config.yaml carries them, and attunectl ignores them without a word. Any
// other top-level section is a warning with the nearest section name.
var attuneSections = map[string]bool{
	"service_name": true, "environment": true, "database": true, "redis": true,
	"message_queue": true, "server": true, "log": true, "security": true,
	"worker": true, "sensor": true, "packs_base_dir": true, "packs": true,
	"runtime_envs_dir": true, "artifacts_dir": true, "artifacts": true,
	"storage": true, "notifier": true, "pack_registry": true, "executor": true,
	"agent": true, "pack_upload": true, "retention": true, "maintenance": true,
	"cache_retention": true, "cache_admission": true,
	"default_execution_timeout_seconds": true,
}

// A MisspelledSectionError is a top-level section that looks like
// attunectl's database section: ignoring it would quietly switch attunectl
// to the embedded database, so it is an error, not a warning.
type MisspelledSectionError struct {
	Line    int
	Section string
}

func (e *MisspelledSectionError) Error() string {
	return fmt.Sprintf("line %d: section %q is not a section attunectl knows (did you mean database?); ignoring it would use the embedded database instead: rename it to database", e.Line, e.Section)
}

// mapKeys are keys whose value is a free-form mapping.
var mapKeys = map[string]bool{"sensor.capabilities": true, "sensor.labels": true}

// unknownFileKeys lists the dotted keys of a config document under
// attunectl's sections that are not configuration keys, with their lines.
func unknownFileKeys(doc *yaml.Node) []string {
	known := map[string]bool{}
	structs := map[string]bool{}
	for _, k := range Keys() {
		known[k] = true
		parts := strings.Split(k, ".")
		for i := 1; i < len(parts); i++ {
			structs[strings.Join(parts[:i], ".")] = true
		}
	}
	var out []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + k.Value
			}
			switch {
			case prefix == "" && attuneSections[k.Value] && !ownSections[k.Value]:
				// Attune's section.
			case prefix == "" && !ownSections[k.Value]:
				out = append(out, fmt.Sprintf("line %d: %s", k.Line, unknownSectionMessage(k.Value)))
			case mapKeys[key] || known[key]:
			case structs[key]:
				walk(v, key)
			default:
				out = append(out, fmt.Sprintf("line %d: %s", k.Line, unknownKeyMessage(key)))
			}
		}
	}
	walk(doc, "")
	return out
}

// unknownEnvKeys lists ATTUNE__ variables under attunectl's sections that
// set no configuration key.
func unknownEnvKeys(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "__", "."))
		section, _, _ := strings.Cut(key, ".")
		if !ownSections[section] || knownKey(key) {
			continue
		}
		out = append(out, "environment variable "+name+": "+unknownKeyMessage(key))
	}
	sort.Strings(out)
	return out
}

// closestSection is attunectl's own section nearest to name, when it is near
// enough to be a typo ("datbase", "Database", "sensors").
func closestSection(name string) string {
	secs := make([]string, 0, len(ownSections))
	for sec := range ownSections {
		secs = append(secs, sec)
	}
	sort.Strings(secs)
	return manifest.Nearest(name, secs, 0)
}

// misspelledDatabase finds a top-level section of doc that is a typo of
// "database".
func misspelledDatabase(doc *yaml.Node) *MisspelledSectionError {
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k := doc.Content[i]
		if !ownSections[k.Value] && !attuneSections[k.Value] && closestSection(k.Value) == "database" {
			return &MisspelledSectionError{Line: k.Line, Section: k.Value}
		}
	}
	return nil
}

func unknownSectionMessage(name string) string {
	msg := fmt.Sprintf("section %s is neither attunectl's nor one of Attune's services' and is ignored", name)
	if best := closestSection(name); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return msg
}

func unknownKeyMessage(key string) string {
	msg := fmt.Sprintf("attunectl has no configuration key %s and ignores it", key)
	if best := closestKey(key); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return msg
}

// closestKey is the known key nearest to key by edit distance, when it is
// near enough to be a typo.
func closestKey(key string) string { return manifest.Nearest(key, Keys(), 0) }
