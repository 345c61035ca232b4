package workers

import (
	"math"
	"strconv"

	"github.com/attune-automation/attunectl/pkg/jsontext"
)

// The decoders of this file read the jsonb values of a listing's rows in
// the form PostgreSQL prints them, without reflection: a listing of a
// million workers decodes a million of each. Each reads only what it can
// read exactly as json.Unmarshal would and reports ok = false for anything
// else (an escape in a string, an unexpected key or type, null), so that
// the caller falls back to json.Unmarshal; fuzz tests hold them to that.

// decodeStringListOf is decodeStringList with str making each string, as
// decodeCapabilitiesOf.
func decodeStringListOf(b []byte, str func([]byte) string) ([]string, bool) {
	r := jsontext.NewReader(b)
	list, ok := r.StringListOf(str)
	return list, ok && r.End()
}

// decodeCapabilitiesOf is decodeCapabilities with str making every string
// (runtimes, versions, the sensor version): a stream shares the strings
// a fleet repeats on every row.
func decodeCapabilitiesOf(b []byte, str func([]byte) string) (c Capabilities, ok bool) {
	r := jsontext.NewReader(b)
	if !r.Eat('{') {
		return c, false
	}
	if r.Eat('}') {
		return c, r.End()
	}
	var seen uint
	for {
		kb, ok := r.PlainBytes()
		if !ok || !r.Eat(':') {
			return c, false
		}
		var bit uint
		switch string(kb) {
		case "runtimes":
			bit = 1
			c.Runtimes, ok = r.StringListOf(str)
		case "max_concurrent_sensors":
			bit = 2
			var n []byte
			if n, ok = r.Number(); ok {
				v, err := strconv.ParseInt(string(n), 10, 64)
				ok = err == nil && v >= math.MinInt && v <= math.MaxInt
				c.MaxConcurrentSensors = int(v)
			}
		case "sensor_version":
			bit = 4
			c.SensorVersion, ok = r.PlainStringOf(str)
		case "runtime_versions":
			bit = 8
			c.RuntimeVersions, ok = r.StringMapOf(str)
		case "heartbeat_interval":
			bit = 16
			var n []byte
			if n, ok = r.Number(); ok {
				var err error
				c.HeartbeatInterval, err = strconv.ParseFloat(string(n), 64)
				ok = err == nil
			}
		case "detection_source":
			bit = 32
			c.DetectionSource, ok = r.PlainStringOf(str)
		default:
			return c, false
		}
		if !ok || seen&bit != 0 {
			return c, false
		}
		seen |= bit
		if r.Eat('}') {
			return c, r.End()
		}
		if !r.Eat(',') {
			return c, false
		}
	}
}
