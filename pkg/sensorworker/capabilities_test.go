package sensorworker

import (
	"reflect"
	"testing"

	"github.com/attune-automation/attunectl/pkg/detect"
)

// TestKeepLastGood: python's check failed for want of file descriptors
// (transient): it stays available with its version; node's failed for
// good (not found): it is withdrawn; shell is new and counts.
func TestKeepLastGood(t *testing.T) {
	last := detect.Result{Source: detect.SourceDatabase,
		Runtimes: []detect.RuntimeResult{
			{Ref: "core.sensor.python", Name: "Python", Available: true, Version: "3.12.1"},
			{Ref: "core.sensor.nodejs", Name: "Node.js", Available: true, Version: "20.1.0"},
			{Ref: "core.sensor.java", Name: "Java", Reason: "not found on PATH"},
		},
		Available: []string{"node.js", "python"},
		Versions:  map[string]string{"python": "3.12.1", "node.js": "20.1.0"},
	}
	next := detect.Result{Source: detect.SourceDatabase,
		Runtimes: []detect.RuntimeResult{
			{Ref: "core.sensor.python", Name: "Python", Transient: true, Reason: "could not start (transient, will retry): creating a pipe: too many open files"},
			{Ref: "core.sensor.nodejs", Name: "Node.js", Reason: "not found on PATH"},
			{Ref: "core.sensor.java", Name: "Java", Transient: true, Reason: "not run: detection deadline of 15s reached"},
			{Ref: "core.sensor.shell", Name: "Shell", Available: true, Via: "always"},
		},
		Available: []string{"shell"},
		Versions:  map[string]string{},
	}
	merged, kept := KeepLastGood(last, next)
	if want := []string{"python", "shell"}; !reflect.DeepEqual(merged.Available, want) {
		t.Errorf("available = %q, want %q", merged.Available, want)
	}
	if want := map[string]string{"python": "3.12.1"}; !reflect.DeepEqual(merged.Versions, want) {
		t.Errorf("versions = %v", merged.Versions)
	}
	if len(kept) != 2 || kept[0].Ref != "core.sensor.python" || kept[1].Ref != "core.sensor.java" {
		t.Errorf("kept = %+v", kept)
	}
	if !merged.Runtimes[0].Available || merged.Runtimes[1].Available || merged.Runtimes[2].Available || !merged.Runtimes[3].Available {
		t.Errorf("runtimes = %+v", merged.Runtimes)
	}
	// next is not modified.
	if len(next.Available) != 1 || next.Runtimes[0].Available {
		t.Error("KeepLastGood changed its argument")
	}
	// Same capabilities as before the shortage, for the row.
	cfg := Config{MaxConcurrentSensors: 10, Version: "1.0"}
	if got, want := BuildCapabilities(cfg, merged).Runtimes, []string{"python", "shell"}; !reflect.DeepEqual(got, want) {
		t.Errorf("capabilities runtimes = %q", got)
	}
	// Nothing to keep from: next as is.
	if m, k := KeepLastGood(detect.Result{}, next); !reflect.DeepEqual(m, next) || k != nil {
		t.Errorf("no last: %+v %+v", m, k)
	}
}
