package runtimes

import "encoding/json"

// DistributionsVerification encodes v as the JSON stored at
// distributions->'verification' ("null" when v is nil).
func DistributionsVerification(v *Verification) ([]byte, error) {
	return json.Marshal(v)
}
