package testsupport

import (
	"os"
	"testing"
)

// RequireRoot skips t with "needs root: why" when the test binary is not
// root. Tests that switch users, chown files or enter namespaces call it;
// CI runs as root, where they run, and .ci/run fails when any test was
// skipped there.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}
