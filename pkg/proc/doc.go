// Package proc answers the questions attunectl asks about processes of this
// machine: is a pid still alive (Alive), which process exactly is this one,
// beyond a pid that a container or a reboot reuses (Identity), has the
// process that registered under a pid certainly ended (Ended), and, as PID 1
// of a container, reaping the orphans the kernel hands it (ReapOrphans).
//
// Every caller that needs one of these answers asks here, so that they agree
// with each other on every platform.
package proc
