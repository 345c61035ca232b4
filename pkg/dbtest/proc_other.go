//go:build !linux

package dbtest

import "syscall"

// setDeathSignal: only Linux has a parent-death signal; elsewhere Main's
// cleanup stops the helper processes.
func setDeathSignal(*syscall.SysProcAttr) {}
