package config

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// attunectl's own sections. Keys under them that attunectl does not know
// are reported (a typo such as heartbeat_intervall would otherwise be
// silently ignored); other sections belong to Attune's services and are
// ignored without a word.
var ownSections = map[string]bool{"database": true, "sensor": true, "log": true, "embedded": true}

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
			case prefix == "" && !ownSections[k.Value]:
				// Attune's section.
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

func unknownKeyMessage(key string) string {
	msg := fmt.Sprintf("attunectl has no configuration key %s and ignores it", key)
	if best := closestKey(key); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return msg
}

// closestKey is the known key nearest to key by edit distance, when it is
// near enough to be a typo.
func closestKey(key string) string {
	best, bestD := "", len(key)/3+2
	for _, k := range Keys() {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
