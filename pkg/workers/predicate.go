package workers

// StaleSQL returns the staleness test that `worker list`, `worker stale`,
// prune and register share, as a SQL boolean expression on the worker
// table's columns qualified by alias ("" for none), evaluated with the
// database clock and each worker's own grace (three advertised heartbeat
// intervals). Other packages that must agree with `worker list` about who is
// live — placement above all — use this text rather than a copy of it.
func StaleSQL(alias string) string { return staleSQL(alias, "NULL", false) }
