package sensorworker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/attune-automation/attunectl/pkg/supervise"
)

// sensorMetrics are the metrics of the sensors a worker places and runs.
type sensorMetrics struct {
	byState         *prometheus.GaugeVec
	starts          prometheus.Counter
	events          *prometheus.CounterVec
	fenceRejections prometheus.Counter
	handoffs        *prometheus.CounterVec
	renewal         prometheus.Histogram
}

func newSensorMetrics(reg *prometheus.Registry) *sensorMetrics {
	m := &sensorMetrics{
		byState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "attunectl_sensor_sensors",
			Help: "Sensors this worker holds, by run state (starting, running, backoff, quarantined).",
		}, []string{"state"}),
		starts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attunectl_sensor_sensor_starts_total",
			Help: "Starts of sensor processes and built-in sensors (first starts and restarts).",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attunectl_sensor_events_total",
			Help: "Events posted by this worker's sensors, by result: accepted, or why refused (unauthorized, forbidden_trigger, unknown_trigger, invalid_payload, stale_fence, too_large, rate_limited, bad_request, error_N).",
		}, []string{"result"}),
		fenceRejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "attunectl_sensor_fence_rejections_total",
			Help: "Writes on behalf of a sensor refused because its assignment had moved on.",
		}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attunectl_sensor_handoffs_total",
			Help: "Sensors this worker stopped holding, by reason (lost, released, drained, rebalanced).",
		}, []string{"reason"}),
		renewal: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "attunectl_sensor_lease_renewal_duration_seconds",
			Help:    "Time of one placement tick: the renewal of every lease (one statement), plus claims and handoffs when due.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	reg.MustRegister(m.byState, m.starts, m.events, m.fenceRejections, m.handoffs, m.renewal)
	return m
}

// observe sets the gauge of sensors by state from the supervisor's view.
func (m *sensorMetrics) observe(running map[int64]string) {
	counts := map[string]int{supervise.StateStarting: 0, supervise.StateRunning: 0, supervise.StateBackoff: 0, supervise.StateQuarantined: 0}
	for _, st := range running {
		if st == "" {
			st = supervise.StateStarting
		}
		counts[st]++
	}
	for st, n := range counts {
		m.byState.WithLabelValues(st).Set(float64(n))
	}
}
