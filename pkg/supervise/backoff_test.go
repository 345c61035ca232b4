package supervise

import (
	"strings"
	"testing"
	"time"
)

func TestPolicyDelayDoublesToTheCap(t *testing.T) {
	p := DefaultPolicy
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for n, w := range want {
		if got := p.Delay(n); got != w {
			t.Errorf("Delay(%d) = %s, want %s", n, got, w)
		}
	}
	if got := p.Delay(30); got != 5*time.Minute {
		t.Errorf("Delay(30) = %s, want the 5m cap", got)
	}
	if got := p.Delay(9); got != 256*time.Second {
		t.Errorf("Delay(9) = %s, want 256s", got)
	}
}

func TestPolicyQuarantinesAfterConsecutiveFailures(t *testing.T) {
	p := DefaultPolicy
	now := time.Unix(1000, 0)
	var st State
	for i := 1; i <= 4; i++ {
		st = p.AfterExit(st, time.Second, "exit status 1", "boom", now)
		if st.Quarantined {
			t.Fatalf("quarantined after %d failures, want 5", i)
		}
		if want := now.Add(p.Delay(i)); !st.NextStartAt.Equal(want) {
			t.Fatalf("failure %d: next start %v, want %v", i, st.NextStartAt, want)
		}
	}
	st = p.AfterExit(st, time.Second, "exit status 1", "boom", now)
	if !st.Quarantined || st.ConsecutiveFailures != 5 {
		t.Fatalf("after 5 failures: %+v, want quarantined", st)
	}
	if !strings.Contains(st.Reason, "exit status 1") || !strings.Contains(st.Reason, "sensor enable") {
		t.Errorf("reason %q should name the exit and how to retry", st.Reason)
	}
}

func TestPolicyHealthyRunResetsFailures(t *testing.T) {
	p := DefaultPolicy
	now := time.Unix(1000, 0)
	st := State{ConsecutiveFailures: 4}
	st = p.AfterExit(st, 11*time.Minute, "exit status 2", "", now)
	if st.ConsecutiveFailures != 1 || st.Quarantined {
		t.Fatalf("after a healthy run: %+v, want 1 failure, not quarantined", st)
	}
	if !st.NextStartAt.Equal(now.Add(time.Second)) {
		t.Errorf("next start %v, want 1s after now", st.NextStartAt)
	}
}
