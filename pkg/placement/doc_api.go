package placement

// What calls what (for the integrator):
//
// The sensor service loop (pkg/sensorworker, once registered):
//
//	p := placement.New(db.Pool, placement.Config{WorkerID: reg.ID(),
//		InstanceID: reg.Instance().ID, Interval: cfg.HeartbeatInterval, Heartbeat: true})
//	sensors.EnsureWorkloads(ctx, db.Pool)   // once, for sensors another tool wrote
//	wake, err := placement.Listen(ctx, db.Pool) // err behind a transaction pooler: tick only
//	each interval, or on <-wake:
//		held, err := p.Tick(ctx)     // held.Claimed: start; held.Dropped: stop at once
//		                             // errors.Is(err, workers.ErrTakenOver): stop the worker
//	on shutdown, before Deregister: p.ReleaseAll(ctx)
//
// With Config.Heartbeat the tick is also the worker's heartbeat (one
// statement); without it the loop keeps calling Registration.Heartbeat.
//
// The supervisor (pkg/supervise) writes under each lease's Fence through
// pkg/events (the event insert and the workload's run state, as `sensor
// run` does); pkg/sensorworker releases handed-over sensors with
// Placer.ReleaseStopped once their processes stopped.
//
// The commands:
//
//	sensor add -f FILE [--update]  sensors.ReadManifest → sensors.Add (errors.As *sensors.ValidationError → exit 2)
//	sensor list [REF…]             sensors.List(ListOptions{Refs, Worker, State}); sensors.ListQuery for psql
//	sensor enable|disable REF…     sensors.SetEnabled
//	worker cordon NAME --reason    placement.Cordon(ctx, pool, name, reason, by)
//	worker uncordon NAME           placement.Uncordon
//	worker drain NAME --deadline   placement.Drain, then with --wait placement.DrainStep each interval
//	                               until DrainStatus.FinishedAt is set
//	worker list CORDONED, SENSORS  worker.cordoned (column), and the live leases each worker holds (in workers.Stream)
