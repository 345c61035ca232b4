package workers

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// BenchmarkHeartbeatPaths measures one heartbeat on the two paths a sensor
// worker may have to the server: direct (the test server's Unix socket;
// session settings as startup parameters, pgx's statement cache) and
// through PgBouncer in transaction mode (loopback TCP to the pooler, which
// reaches the server over its socket; settings applied by the transaction,
// no prepared statements). Only exported API, so that it measures what
// `sensor run` does.
//
//	go test -run '^$' -bench 'HeartbeatPaths' -benchtime 5s -count 5 ./pkg/workers
func BenchmarkHeartbeatPaths(b *testing.B) {
	d := dbtest.NewPgBouncer(b)
	for _, path := range []struct{ name, url string }{{"direct", d.URL}, {"pgbouncer", d.PoolerURL}} {
		b.Run(path.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := database.Open(ctx, database.Options{URL: path.url, Schema: d.Schema, MaxConns: 1, StatementTimeout: 30 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if db.Pooler != (path.name == "pgbouncer") {
				b.Fatalf("pooler mode %v on the %s path", db.Pooler, path.name)
			}
			r := NewRegistration(db, RegistrationConfig{
				Name:         "sensor-bench-" + path.name,
				Host:         "bench",
				Capabilities: Capabilities{Runtimes: []string{"shell"}, MaxConcurrentSensors: 10, SensorVersion: "bench", HeartbeatInterval: 30},
				Instance:     Instance{ID: rand.Text(), PID: 4242, StartedAt: time.Now().UTC(), Hostname: "bench", Version: "bench"},
			})
			if _, err := r.Register(ctx, RegisterOptions{}); err != nil {
				b.Fatal(err)
			}
			if _, err := r.Heartbeat(ctx); err != nil { // warm: prepare where the path prepares
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := r.Heartbeat(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
