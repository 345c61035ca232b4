package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Fence identifies one ownership of a sensor workload: the worker and the
// process instance that hold it, and the generation of the start. A write
// made on behalf of a sensor names its fence and fails when the assignment
// has moved on.
type Fence struct {
	Workload   int64  `json:"workload"`
	Worker     int64  `json:"worker"`
	Instance   string `json:"instance"`
	Generation int64  `json:"generation"`
}

func (f Fence) String() string {
	return fmt.Sprintf("workload %d, worker %d, instance %s, generation %d", f.Workload, f.Worker, f.Instance, f.Generation)
}

// ErrFenceStale is returned by every fenced write whose fence no longer
// matches the assignment row (another owner, a newer generation, or an
// expired lease).
var ErrFenceStale = errors.New("the sensor's assignment moved on: this worker no longer holds it under this generation")

// Trigger is one trigger a sensor fires, as passed to the sensor process in
// ATTUNE_SENSOR_TRIGGERS (Attune's contract: id, ref, trigger_ref, config).
type Trigger struct {
	ID         int64           `json:"id"`
	Ref        string          `json:"ref"`
	TriggerRef string          `json:"trigger_ref"`
	Config     json.RawMessage `json:"config"`
}

// Event is one event to record under a fence.
type Event struct {
	Fence      Fence
	SensorID   int64
	SensorRef  string
	TriggerID  int64
	TriggerRef string
	Config     json.RawMessage
	Payload    json.RawMessage
}

// EventWriter records an event in the same transaction that checks its
// fence; it returns ErrFenceStale (wrapped or not) when the fence is stale.
type EventWriter interface {
	WriteEvent(ctx context.Context, ev Event) (id int64, err error)
}
