package dbtest

import "syscall"

// setDeathSignal has the kernel kill a helper process (PgBouncer) when the
// test binary dies, so none outlives a crashed or timed-out test run.
func setDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
