package placement_test

import (
	"testing"

	"github.com/attune-automation/attunectl/pkg/placement"
)

func TestEligible(t *testing.T) {
	base := placement.WorkerInfo{
		Role: "sensor", Live: true, Runtimes: []string{"python", "shell"},
		Versions: map[string]string{"python": "3.12.1"},
		Labels:   map[string]string{"zone": "eu-1", "disk": "ssd"},
		Capacity: 2,
	}
	py := placement.Requirement{RuntimeName: "Python"}
	with := func(f func(*placement.WorkerInfo)) placement.WorkerInfo {
		w := base
		f(&w)
		return w
	}
	req := func(f func(*placement.Requirement)) placement.Requirement {
		r := py
		f(&r)
		return r
	}
	tests := []struct {
		name string
		w    placement.WorkerInfo
		r    placement.Requirement
		want placement.Reason
	}{
		{"runtime by name", base, py, placement.ReasonOK},
		{"runtime missing", base, placement.Requirement{RuntimeName: "Node.js"}, placement.ReasonRuntime},
		{"runtime by alias", with(func(w *placement.WorkerInfo) { w.Runtimes = []string{"python3"} }),
			req(func(r *placement.Requirement) { r.RuntimeAliases = []string{"python3"} }), placement.ReasonOK},
		{"alias not advertised", with(func(w *placement.WorkerInfo) { w.Runtimes = []string{"py"} }),
			req(func(r *placement.Requirement) { r.RuntimeAliases = []string{"python3"} }), placement.ReasonRuntime},
		{"version satisfies", base, req(func(r *placement.Requirement) { r.Constraint = ">=3.12" }), placement.ReasonOK},
		{"version too old", base, req(func(r *placement.Requirement) { r.Constraint = ">=3.13" }), placement.ReasonVersion},
		{"version range", base, req(func(r *placement.Requirement) { r.Constraint = ">=3.10, <4" }), placement.ReasonOK},
		{"version unknown", with(func(w *placement.WorkerInfo) { w.Versions = nil }),
			req(func(r *placement.Requirement) { r.Constraint = ">=3" }), placement.ReasonVersion},
		{"version by alias key", with(func(w *placement.WorkerInfo) {
			w.Runtimes = []string{"python3"}
			w.Versions = map[string]string{"python3": "v3.12.0"}
		}), req(func(r *placement.Requirement) { r.RuntimeAliases = []string{"python3"}; r.Constraint = "~3.12" }), placement.ReasonOK},
		{"selector matches", base, req(func(r *placement.Requirement) { r.Selector = map[string]string{"zone": "eu-1"} }), placement.ReasonOK},
		{"selector value differs", base, req(func(r *placement.Requirement) { r.Selector = map[string]string{"zone": "us-1"} }), placement.ReasonSelector},
		{"selector label missing", base, req(func(r *placement.Requirement) { r.Selector = map[string]string{"gpu": "yes"} }), placement.ReasonSelector},
		{"taint not tolerated", with(func(w *placement.WorkerInfo) { w.Taints = []placement.Taint{{Key: "gpu", Value: "true"}} }), py, placement.ReasonTaint},
		{"taint tolerated (equal)", with(func(w *placement.WorkerInfo) {
			w.Taints = []placement.Taint{{Key: "gpu", Value: "true", Effect: "NoSchedule"}}
		}),
			req(func(r *placement.Requirement) { r.Tolerations = []placement.Toleration{{Key: "gpu", Value: "true"}} }), placement.ReasonOK},
		{"taint tolerated (exists)", with(func(w *placement.WorkerInfo) { w.Taints = []placement.Taint{{Key: "gpu", Value: "a100"}} }),
			req(func(r *placement.Requirement) {
				r.Tolerations = []placement.Toleration{{Key: "gpu", Operator: "exists"}}
			}), placement.ReasonOK},
		{"toleration of another value", with(func(w *placement.WorkerInfo) { w.Taints = []placement.Taint{{Key: "gpu", Value: "a100"}} }),
			req(func(r *placement.Requirement) { r.Tolerations = []placement.Toleration{{Key: "gpu", Value: "t4"}} }), placement.ReasonTaint},
		{"toleration of another effect", with(func(w *placement.WorkerInfo) { w.Taints = []placement.Taint{{Key: "gpu", Value: "x"}} }),
			req(func(r *placement.Requirement) {
				r.Tolerations = []placement.Toleration{{Key: "gpu", Value: "x", Effect: "prefer_no_schedule"}}
			}), placement.ReasonTaint},
		{"prefer_no_schedule taint is advisory", with(func(w *placement.WorkerInfo) {
			w.Taints = []placement.Taint{{Key: "spot", Value: "yes", Effect: "prefer_no_schedule"}}
		}), py, placement.ReasonOK},
		{"one of two taints tolerated", with(func(w *placement.WorkerInfo) {
			w.Taints = []placement.Taint{{Key: "gpu", Value: "x"}, {Key: "pci", Value: "y"}}
		}), req(func(r *placement.Requirement) {
			r.Tolerations = []placement.Toleration{{Key: "gpu", Operator: "exists"}}
		}), placement.ReasonTaint},
		{"capacity left", with(func(w *placement.WorkerInfo) { w.Held = 1 }), py, placement.ReasonOK},
		{"capacity full", with(func(w *placement.WorkerInfo) { w.Held = 2 }), py, placement.ReasonFull},
		{"default capacity 10", with(func(w *placement.WorkerInfo) { w.Capacity = 0; w.Held = 10 }), py, placement.ReasonFull},
		{"cordoned", with(func(w *placement.WorkerInfo) { w.Cordoned = true }), py, placement.ReasonCordoned},
		{"stale", with(func(w *placement.WorkerInfo) { w.Live = false }), py, placement.ReasonStale},
		{"action worker", with(func(w *placement.WorkerInfo) { w.Role = "action" }), py, placement.ReasonNotSensor},
		{"hybrid worker", with(func(w *placement.WorkerInfo) { w.Role = "hybrid" }), py, placement.ReasonOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := placement.Eligible(tt.w, tt.r); got != tt.want {
				t.Errorf("Eligible = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	py311 := placement.WorkerInfo{Role: "sensor", Live: true, Runtimes: []string{"python"}, Versions: map[string]string{"python": "3.11.7"}}
	tainted := placement.WorkerInfo{Role: "sensor", Live: true, Runtimes: []string{"python"}, Versions: map[string]string{"python": "3.12.0"},
		Taints: []placement.Taint{{Key: "gpu", Value: "true"}}}
	stale := placement.WorkerInfo{Role: "sensor", Live: false, Runtimes: []string{"python"}, Versions: map[string]string{"python": "3.13.0"}}
	tests := []struct {
		name string
		ws   []placement.WorkerInfo
		r    placement.Requirement
		want string
	}{
		{"nobody", nil, placement.Requirement{RuntimeName: "Python"}, "no live sensor worker"},
		{"only stale", []placement.WorkerInfo{stale}, placement.Requirement{RuntimeName: "Python"}, "no live sensor worker"},
		{"runtime", []placement.WorkerInfo{py311}, placement.Requirement{RuntimeName: "Node.js"}, "no live worker advertises node.js"},
		{"version", []placement.WorkerInfo{py311, stale}, placement.Requirement{RuntimeName: "Python", Constraint: ">=3.12"},
			"no live worker advertises python satisfying >=3.12"},
		{"taint", []placement.WorkerInfo{py311, tainted}, placement.Requirement{RuntimeName: "Python", Constraint: ">=3.12"},
			"every live worker with python satisfying >=3.12 has a taint the sensor does not tolerate (gpu=true:no_schedule)"},
		{"selector", []placement.WorkerInfo{py311}, placement.Requirement{RuntimeName: "Python", Selector: map[string]string{"zone": "eu"}},
			"no live worker with python has the labels zone=eu"},
		{"fits", []placement.WorkerInfo{py311}, placement.Requirement{RuntimeName: "python"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := placement.Explain(tt.ws, tt.r); got != tt.want {
				t.Errorf("Explain = %q\nwant      %q", got, tt.want)
			}
		})
	}
}
