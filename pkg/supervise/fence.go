package supervise

import (
	"context"
	"encoding/json"

	"github.com/attune-automation/attunectl/pkg/fence"
)

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
	Fence      fence.Fence
	SensorID   int64
	SensorRef  string
	TriggerID  int64
	TriggerRef string
	Config     json.RawMessage
	Payload    json.RawMessage
}

// EventWriter records an event in the same transaction that checks its
// fence; it returns fence.ErrStale (wrapped or not) when the fence is stale.
type EventWriter interface {
	WriteEvent(ctx context.Context, ev Event) (id int64, err error)
}
