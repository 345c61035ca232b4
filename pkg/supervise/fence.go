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
	// RuleID and RuleRef link the event to the rule its
	// trigger_instance_id named (0 and "": none).
	RuleID  int64
	RuleRef string
}

// EventWriter records an event in the same transaction that checks its
// fence; it returns fence.ErrStale (wrapped or not) when the fence is stale.
type EventWriter interface {
	WriteEvent(ctx context.Context, ev Event) (id int64, err error)
}

// EventChecker makes, before an event is written, the checks Attune's API
// makes (pkg/events.Checker): the trigger exists, is on and is the
// sensor's; trigger_instance_id names a rule of it; the payload satisfies
// the trigger's out_schema. A refusal is a *CheckError.
type EventChecker interface {
	Check(ctx context.Context, sensorID int64, triggerRef, instance string, payload []byte) (CheckedEvent, error)
}

// CheckedEvent is what a check adds to the event: the rule named by
// trigger_instance_id.
type CheckedEvent struct {
	RuleID  int64
	RuleRef string
}

// CheckError is an event refused by a check, with the HTTP status Attune's
// API answers it with.
type CheckError struct {
	Status  int
	Message string
}

func (e *CheckError) Error() string { return e.Message }
