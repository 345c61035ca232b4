// Package fence owns the one rule every write on behalf of a sensor obeys:
// the write happens only while the writer still holds the sensor's
// workload — the assignment row (Attune's sensor_workload_assignment) still
// names this workload, worker, worker instance and generation, and its
// lease has not expired by the database's clock. Placement (renewals,
// releases), the supervisor's run state and the event insert all build
// their statements from this package's predicate and report a refused
// write as ErrStale; nothing else writes the rule.
package fence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Fence identifies one ownership of one workload: the worker row and the
// process instance that hold it, and the generation of the current start.
type Fence struct {
	Workload   int64  `json:"workload"`
	Worker     int64  `json:"worker"`
	Instance   string `json:"worker_instance"` // uuid text (InstanceUUID)
	Generation int64  `json:"generation"`
}

func (f Fence) String() string {
	return fmt.Sprintf("workload %d, worker %d, instance %s, generation %d", f.Workload, f.Worker, f.Instance, f.Generation)
}

// ErrStale is the error (wrapped) of every fenced write refused because its
// fence is no longer the assignment's: another owner, a newer generation,
// or an expired lease. The writer must stop treating the sensor as its own.
var ErrStale = errors.New("the sensor's assignment moved on: this worker no longer holds it under this generation")

// Live is the live-lease condition on an assignment row's columns:
// qualify it with the row's alias ("a." + fence.Live). A lease is live
// until its expiry by the database's clock_timestamp(), never the host's.
const Live = "lease_expires_at > clock_timestamp()"

// Predicate is the fence condition on the assignment row alias: its
// workload, worker, worker_instance and generation equal the SQL
// expressions given, and its lease is live.
func Predicate(alias, workload, worker, instance, generation string) string {
	return alias + ".workload = " + workload + " AND " + alias + ".worker = " + worker +
		" AND " + alias + ".worker_instance = " + instance + " AND " + alias + ".generation = " + generation +
		" AND " + alias + "." + Live
}

// Where is Predicate over the parameters $1..$4 (workload, worker, instance
// as uuid text, generation): Args fills them.
func Where(alias string) string { return Predicate(alias, "$1", "$2", "$3::uuid", "$4") }

// Args are the parameters of Where, followed by more.
func Args(f Fence, more ...any) []any {
	return append([]any{f.Workload, f.Worker, f.Instance, f.Generation}, more...)
}

// InstanceUUID maps a worker instance id (attunectl's are random base32
// text) to the uuid Attune's worker_instance column holds: a uuid is kept
// as it is, anything else becomes a name-based (SHA-256, RFC 9562 version 8)
// uuid, so the same instance always gets the same uuid.
func InstanceUUID(id string) string {
	if looksLikeUUID(id) {
		return strings.ToLower(id)
	}
	sum := sha256.Sum256([]byte("attunectl-instance:" + id))
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x80 // version 8
	b[8] = (b[8] & 0x3f) | 0x80 // variant RFC 9562
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func looksLikeUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}
