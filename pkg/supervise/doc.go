// Package supervise runs the sensors a worker owns: external sensor
// processes (started through the one sandbox, restarted with backoff,
// quarantined when they keep failing, stopped with SIGTERM then SIGKILL),
// built-in timer sensors that run inside the worker, and the loopback event
// endpoint through which a sensor process emits events.
//
// Ownership comes from pkg/placement: the supervisor is told which workloads
// this worker holds, under which fence (workload, worker, instance,
// generation), and reconciles what runs with that set. Every write on behalf
// of a sensor — an event, a restart's state — carries that fence, and a
// write under a stale fence fails, so a process whose owner lost the lease
// can never record anything, even while it is still running.
//
// The package holds no SQL: the writes go through the Store interface,
// implemented over PostgreSQL by pkg/events and pkg/placement.
package supervise
