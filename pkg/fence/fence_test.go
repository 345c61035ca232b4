package fence

import (
	"regexp"
	"testing"
)

func TestInstanceUUID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := InstanceUUID("KXXMRRCJCFXWXX6ROWO5DLE5N5"), InstanceUUID("PCCOXQ64TAEORSPWPM5SP5CNDC")
	if !uuid.MatchString(a) || !uuid.MatchString(b) || a == b {
		t.Errorf("instance ids map to %q and %q: want two version-8 uuids", a, b)
	}
	if again := InstanceUUID("KXXMRRCJCFXWXX6ROWO5DLE5N5"); again != a {
		t.Errorf("the same instance maps to %q, then %q", a, again)
	}
	// A uuid is kept (lower case): Attune's own instances are uuids.
	if got := InstanceUUID("6F1C2A9E-0000-4000-8000-00000000ABCD"); got != "6f1c2a9e-0000-4000-8000-00000000abcd" {
		t.Errorf("a uuid became %q", got)
	}
}

func TestPredicate(t *testing.T) {
	want := "a.workload = $1 AND a.worker = $2 AND a.worker_instance = $3::uuid AND a.generation = $4 AND a.lease_expires_at > clock_timestamp()"
	if got := Where("a"); got != want {
		t.Errorf("Where(a) = %q, want %q", got, want)
	}
	args := Args(Fence{Workload: 1, Worker: 2, Instance: "u", Generation: 4}, "x")
	if len(args) != 5 || args[0] != int64(1) || args[1] != int64(2) || args[2] != "u" || args[3] != int64(4) || args[4] != "x" {
		t.Errorf("Args = %v", args)
	}
}
