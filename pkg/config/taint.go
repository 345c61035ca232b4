package config

import (
	"fmt"
	"strings"
)

// Taint is one parsed sensor.taints entry.
type Taint struct {
	Key, Value, Effect string
}

// ParseTaint reads "key=value:Effect" (value optional; effect NoSchedule or
// PreferNoSchedule, default NoSchedule), Kubernetes' spelling.
func ParseTaint(s string) (Taint, error) {
	s = strings.TrimSpace(s)
	spec, effect, hasEffect := strings.Cut(s, ":")
	if !hasEffect {
		effect = "NoSchedule"
	}
	key, value, _ := strings.Cut(spec, "=")
	switch {
	case key == "":
		return Taint{}, fmt.Errorf("taint %q has no key (give key=value:NoSchedule)", s)
	case strings.ContainsAny(key+value, " \t\r\n\x1b,"):
		return Taint{}, fmt.Errorf("taint %q: key and value may not contain spaces, commas or control characters", s)
	}
	switch strings.ToLower(strings.ReplaceAll(effect, "_", "")) {
	case "noschedule":
		effect = "NoSchedule"
	case "prefernoschedule":
		effect = "PreferNoSchedule"
	default:
		return Taint{}, fmt.Errorf("taint %q: effect %q is not NoSchedule or PreferNoSchedule", s, effect)
	}
	return Taint{Key: key, Value: value, Effect: effect}, nil
}
