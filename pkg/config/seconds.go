package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Seconds is a duration written in configuration the way Attune writes it: a
// whole number of seconds (heartbeat_interval: 30). A Go duration string
// ("1m30s", "500ms") is accepted too, so that sub-second intervals can be set
// for tests and benchmarks.
type Seconds time.Duration

// D returns the value as a time.Duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }

// String renders whole seconds as "30s" and other values as Go durations.
func (s Seconds) String() string { return time.Duration(s).String() }

// ParseSeconds reads "30" (seconds), "2.5" (seconds) or a Go duration ("1m").
func ParseSeconds(v string) (Seconds, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, fmt.Errorf("empty duration: give seconds (30) or a duration (30s, 1m)")
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return Seconds(time.Duration(f * float64(time.Second))), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: give seconds (30) or a duration (30s, 1m)", v)
	}
	return Seconds(d), nil
}

// UnmarshalYAML accepts an integer or float number of seconds, or a duration string.
func (s *Seconds) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected seconds (30) or a duration (30s), got a %s", n.Line, kindName(n.Kind))
	}
	v, err := ParseSeconds(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// MarshalYAML writes whole seconds as an integer, as Attune's files do, and
// anything finer as a duration string.
func (s Seconds) MarshalYAML() (any, error) {
	d := time.Duration(s)
	if d%time.Second == 0 {
		return int64(d / time.Second), nil
	}
	return d.String(), nil
}

// MarshalJSON writes the duration as a string ("30s"), which ParseSeconds
// reads back.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(s.String())), nil
}

// UnmarshalJSON accepts a number of seconds or a duration string.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	v, err := ParseSeconds(strings.Trim(string(b), `"`))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "value"
	}
}
