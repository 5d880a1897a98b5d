package sandbox

import (
	"fmt"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"google.golang.org/protobuf/proto"
)

// cgroupMetrics reads the host-side metrics of a sandbox cgroup: what the
// whole sandbox (sentry, gofer, the pod's processes) costs the host.
func cgroupMetrics(cgroupsPath string) (proto.Message, error) {
	if cgroupsPath == "" {
		return nil, fmt.Errorf("sandbox has no cgroup")
	}
	rel := cgroupRelPath(cgroupsPath)
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(rel)
		if err != nil {
			return nil, fmt.Errorf("load cgroup %s: %w", rel, err)
		}
		return m.Stat()
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(rel))
	if err != nil {
		return nil, fmt.Errorf("load cgroup %s: %w", rel, err)
	}
	return cg.Stat(cgroup1.IgnoreNotExist)
}
