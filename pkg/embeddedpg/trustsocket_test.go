package embeddedpg

import (
	"strings"
	"testing"
)

// TestTrustSocketOnlyForThrowawayServers: Options.TrustSocket is refused
// without Ephemeral, and only it puts trust in pg_hba.conf: the default a
// user keeps data in stays peer (or scram) on the socket.
func TestTrustSocketOnlyForThrowawayServers(t *testing.T) {
	if _, err := (Options{DataDir: "/tmp/x/data", TrustSocket: true}).withDefaults(); err == nil || !strings.Contains(err.Error(), "Ephemeral") {
		t.Errorf("TrustSocket without Ephemeral: %v", err)
	}
	if _, err := (Options{DataDir: "/tmp/x/data", TrustSocket: true, Ephemeral: true}).withDefaults(); err != nil {
		t.Errorf("TrustSocket with Ephemeral: %v", err)
	}
	for _, osUser := range []string{"alice", ""} {
		if hba := hbaConf(osUser, false); strings.Contains(hba, " trust") {
			t.Errorf("default pg_hba.conf for %q trusts:\n%s", osUser, hba)
		}
		hba := hbaConf(osUser, true)
		for _, line := range strings.Split(hba, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if want := map[string]string{"local": "trust", "host": "scram-sha-256"}[f[0]]; f[len(f)-1] != want {
				t.Errorf("TrustSocket pg_hba.conf line %q: want %s", line, want)
			}
		}
	}
}
