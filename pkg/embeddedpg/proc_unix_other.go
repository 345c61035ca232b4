//go:build unix && !linux

package embeddedpg

import "syscall"

// setDeathSignal is not available outside Linux: a foreground server is
// stopped by Stop, or keeps running until its data directory is stopped.
func setDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}

func processName(int) string { return "" }
