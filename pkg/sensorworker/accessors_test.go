package sensorworker

import "github.com/attune-automation/attunectl/pkg/workers"

// Done is closed when the service stops on its own: its row was taken over
// by another instance, or could not be registered again after a prune.
func (s *Service) Done() <-chan struct{} { return s.done }

// Registration is the worker's registration (nil before Start detected the
// runtimes).
func (s *Service) Registration() *workers.Registration { return s.reg }

// MetricsAddr is the address the metrics server listens on ("" when off);
// with port 0 in Config.MetricsAddr it is the port the system chose.
func (s *Service) MetricsAddr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}
