package cli

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/attune-automation/attunectl/pkg/jsontext"
	"github.com/attune-automation/attunectl/pkg/workers"
)

// appendWorkerJSON appends r's element of -o json, byte for byte what
// encoding/json writes for viewOf(r, withPlacement) inside the listing's
// array, without reflection: -o json of a million workers spent most of
// its time decoding capabilities and meta into Go values and encoding them
// again. It reports false, having appended nothing, where it cannot be
// sure to write the same (capabilities with keys attunectl does not know,
// a meta that is not an object or holds what jsontext leaves to
// encoding/json): the printer then encodes viewOf(r). Tests compare the
// two on the goldens, on PostgreSQL's own rows and on fuzzed values.
func appendWorkerJSON(b []byte, r workers.Row, withPlacement bool) ([]byte, bool) {
	w := r.Worker
	c := w.Capabilities
	if len(c.Extra) > 0 || r.Meta != nil {
		return b, false
	}
	start := len(b)
	field := func(name string) { b = appendKey(b, name, 2) }
	str := func(name, v string) {
		field(name)
		b = jsontext.AppendString(b, v, false)
	}
	at := func(name string, t time.Time) {
		field(name)
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, '{')
	field("id")
	b = strconv.AppendInt(b, w.ID, 10)
	str("name", w.Name)
	str("role", w.Role)
	str("type", w.Type)
	str("state", w.State)
	str("status", w.Status)
	str("host", w.Host)
	field("port")
	if w.Port == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*w.Port), 10)
	}
	field("runtimes")
	b = appendStrings(b, c.Runtimes, 2, false, "[]")
	field("runtime_versions")
	b = appendStringMap(b, c.RuntimeVersions, 2, false)
	str("instance_id", r.InstanceID)
	if w.LastHeartbeat != nil {
		at("last_heartbeat", *w.LastHeartbeat)
		field("silent_for_seconds")
		b = jsontext.AppendFloat(b, math.Round(w.Silence.Seconds()*1000)/1000)
	} else {
		field("last_heartbeat")
		b = append(b, "null"...)
		field("silent_for_seconds")
		b = append(b, "null"...)
	}
	field("grace_seconds")
	b = jsontext.AppendFloat(b, r.Grace.Seconds())
	field("capabilities")
	if c.Runtimes == nil && c.MaxConcurrentSensors == 0 && c.SensorVersion == "" && c.RuntimeVersions == nil &&
		c.HeartbeatInterval == 0 && c.DetectionSource == "" {
		b = append(b, "null"...)
	} else {
		b = appendCapabilities(b, c)
	}
	field("meta")
	if r.MetaJSON == nil {
		b = append(b, '{', '}')
	} else {
		var ok bool
		if jsontext.NewReader(r.MetaJSON).Peek() != '{' {
			return b[:start], false
		}
		if b, ok = jsontext.AppendGeneric(b, r.MetaJSON, 2); !ok {
			return b[:start], false
		}
	}
	at("created", w.Created)
	at("updated", w.Updated)
	if withPlacement {
		ps := r.Placement
		field("cordoned")
		b = strconv.AppendBool(b, ps.Cordoned)
		if ps.Reason != "" {
			str("cordon_reason", ps.Reason)
		}
		if ps.By != "" {
			str("cordoned_by", ps.By)
		}
		if ps.At != nil {
			at("cordoned_at", *ps.At)
		}
		field("sensors")
		b = strconv.AppendInt(b, int64(ps.Held), 10)
	}
	b = jsontext.AppendIndent(b, 1)
	return append(b, '}'), true
}

// appendCapabilities writes c (without Extra) as Capabilities.MarshalJSON
// does, nested at depth 2: its fields in order, the omitempty ones left out
// when empty, and its strings HTML-escaped (MarshalJSON uses json.Marshal).
func appendCapabilities(b []byte, c workers.Capabilities) []byte {
	key := func(name string) { b = appendKey(b, name, 3) }
	b = append(b, '{')
	key("runtimes")
	b = appendStrings(b, c.Runtimes, 3, true, "null")
	key("max_concurrent_sensors")
	b = strconv.AppendInt(b, int64(c.MaxConcurrentSensors), 10)
	key("sensor_version")
	b = jsontext.AppendString(b, c.SensorVersion, true)
	if len(c.RuntimeVersions) > 0 {
		key("runtime_versions")
		b = appendStringMap(b, c.RuntimeVersions, 3, true)
	}
	if c.HeartbeatInterval != 0 {
		key("heartbeat_interval")
		b = jsontext.AppendFloat(b, c.HeartbeatInterval)
	}
	if c.DetectionSource != "" {
		key("detection_source")
		b = jsontext.AppendString(b, c.DetectionSource, true)
	}
	b = jsontext.AppendIndent(b, 2)
	return append(b, '}')
}

// appendStrings writes list as an indented array at depth; nilText is
// what a nil list is written as (null, or [] where the view makes it one).
func appendStrings(b []byte, list []string, depth int, html bool, nilText string) []byte {
	switch {
	case list == nil:
		return append(b, nilText...)
	case len(list) == 0:
		return append(b, '[', ']')
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendIndent(b, depth+1)
		b = jsontext.AppendString(b, s, html)
	}
	b = jsontext.AppendIndent(b, depth)
	return append(b, ']')
}

// appendStringMap writes m as an indented object at depth, keys sorted as
// encoding/json sorts a map's; nil and empty are {}.
func appendStringMap(b []byte, m map[string]string, depth int, html bool) []byte {
	if len(m) == 0 {
		return append(b, '{', '}')
	}
	var spare [8]string
	keys := spare[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendIndent(b, depth+1)
		b = jsontext.AppendString(b, k, html)
		b = append(b, ':', ' ')
		b = jsontext.AppendString(b, m[k], html)
	}
	b = jsontext.AppendIndent(b, depth)
	return append(b, '}')
}

// appendKey starts the member name (a plain key) of the object being
// written at depth: a comma after the previous member, the indentation,
// the quoted name and the colon.
func appendKey(b []byte, name string, depth int) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = jsontext.AppendIndent(b, depth)
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':', ' ')
}
