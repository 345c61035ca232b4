package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// As root, each box also gets cgroups of its own, nested below attunectl's
// (attunectl/box-PID-N): the pids controller bounds the processes of the
// box as a whole (Limits.Processes), the memory controller its memory
// (Limits.MemoryBytes, page cache included). The helper joins them before
// it starts the command, so the command is born in them; they are removed
// when the box is gone. Both cgroup v1 (each controller its own hierarchy)
// and v2 (one hierarchy, where attunectl's cgroup may have children with
// controllers: systemd's Delegate=yes) are handled by containerd/cgroups.

const cgroupRoot = "/sys/fs/cgroup"

var cgroupSeq atomic.Int64

// cgroup is one box's cgroups.
type cgroup struct {
	dirs []string // the directories the helper joins
	v1   cgroup1.Cgroup
	v2   *cgroup2.Manager
}

func v1Hierarchy() ([]cgroup1.Subsystem, error) {
	return []cgroup1.Subsystem{cgroup1.NewPids(cgroupRoot), cgroup1.NewMemory(cgroupRoot, cgroup1.OptionalSwap())}, nil
}

// createCgroup makes the cgroups of one box, named attunectl/NAME below
// attunectl's own, with l's process and memory limits.
func createCgroup(name string, l Limits) (*cgroup, error) {
	name = "attunectl/" + name
	switch cgroups.Mode() {
	case cgroups.Unified:
		group, err := cgroup2.NestedGroupPath(name)
		if err != nil {
			return nil, err
		}
		res := &cgroup2.Resources{}
		if l.Processes > 0 {
			res.Pids = &cgroup2.Pids{Max: int64(l.Processes)}
		}
		if l.MemoryBytes > 0 {
			m := int64(l.MemoryBytes)
			res.Memory = &cgroup2.Memory{Max: &m}
		}
		m, err := cgroup2.NewManager(cgroupRoot, group, res)
		if err != nil {
			return nil, err
		}
		return &cgroup{dirs: []string{filepath.Join(cgroupRoot, group)}, v2: m}, nil
	case cgroups.Legacy, cgroups.Hybrid:
		res := &specs.LinuxResources{}
		if l.Processes > 0 {
			n := int64(l.Processes)
			res.Pids = &specs.LinuxPids{Limit: &n}
		}
		if l.MemoryBytes > 0 {
			m := int64(l.MemoryBytes)
			res.Memory = &specs.LinuxMemory{Limit: &m}
		}
		path := cgroup1.NestedPath(name)
		cg, err := cgroup1.New(path, res, cgroup1.WithHiearchy(v1Hierarchy))
		if err != nil {
			return nil, err
		}
		c := &cgroup{v1: cg}
		for _, sub := range []cgroup1.Name{cgroup1.Pids, cgroup1.Memory} {
			p, err := path(sub)
			if err != nil {
				c.remove()
				return nil, err
			}
			c.dirs = append(c.dirs, filepath.Join(cgroupRoot, string(sub), p))
		}
		return c, nil
	}
	return nil, errors.New("no cgroup hierarchy is mounted")
}

// remove deletes the cgroups once the last process has left them (the
// kernel may still be tearing the box down: a few retries).
func (c *cgroup) remove() {
	if c == nil {
		return
	}
	for i := 0; i < 50; i++ {
		var err error
		if c.v2 != nil {
			err = c.v2.Delete()
		} else {
			err = c.v1.Delete()
		}
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newCgroup makes the cgroups of a box being started, when this sandbox
// uses cgroups.
func (s *Sandbox) newCgroup() (*cgroup, error) {
	if !s.cgroups {
		return nil, nil
	}
	return createCgroup(fmt.Sprintf("box-%d-%d", os.Getpid(), cgroupSeq.Add(1)), s.limits)
}
