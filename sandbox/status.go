package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/timestamppb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Wait blocks until the sandbox has exited.
func (c *Controller) Wait(ctx context.Context, id string) (sandbox.ExitStatus, error) {
	s, err := c.get(id)
	if err != nil {
		return sandbox.ExitStatus{}, err
	}
	select {
	case <-s.exited:
		rec := s.snapshot()
		return sandbox.ExitStatus{ExitStatus: rec.ExitStatus, ExitedAt: rec.ExitedAt}, nil
	case <-ctx.Done():
		return sandbox.ExitStatus{}, ctx.Err()
	}
}

// Status reports the sandbox's own state: READY only while its runsc
// sandbox runs.
func (c *Controller) Status(ctx context.Context, id string, verbose bool) (sandbox.ControllerStatus, error) {
	s, err := c.get(id)
	if err != nil {
		return sandbox.ControllerStatus{}, err
	}
	rec := s.snapshot()
	st := sandbox.ControllerStatus{
		SandboxID: id,
		Pid:       rec.Pid,
		State:     "SANDBOX_NOTREADY",
		CreatedAt: rec.CreatedAt,
		ExitedAt:  rec.ExitedAt,
	}
	if rec.State == StateRunning {
		st.State = "SANDBOX_READY"
	}
	if verbose {
		runscFlags := c.client(rec).FlagSet()
		platform := runscFlags["platform"]
		if platform == "" {
			platform = "default (systrap)"
		}
		flags, _ := json.Marshal(runscFlags)
		st.Info = map[string]string{
			"runtime":        "runsc",
			"runscVersion":   c.runscVersion,
			"runscRoot":      c.client(rec).RootDir(),
			"platform":       platform,
			"state":          string(rec.State),
			"hostNetwork":    fmt.Sprint(rec.HostNetwork),
			"cgroupsPath":    rec.CgroupsPath,
			"netnsPath":      rec.NetNSPath,
			"bundle":         s.bundle,
			"runscFlags":     string(flags),
			"containerCount": c.containerCount(ctx, rec),
		}
		if rec.State == StateStopped {
			st.Info["exitStatus"] = fmt.Sprint(rec.ExitStatus)
		}
		s.mu.Lock()
		if s.corrupt {
			st.Info["recordUnreadable"] = "true"
		}
		s.mu.Unlock()
		st.Info["info"] = c.criInfo(s, rec)
	}
	return st, nil
}

// criInfo renders the "info" entry CRI's verbose PodSandboxStatus decodes
// (the fields of its podsandbox SandboxInfo that apply here).
func (c *Controller) criInfo(s *Sandbox, rec record) string {
	cfg, _ := rec.podConfig()
	spec, _ := ReadSpec(s.bundle)
	status := string(rec.State)
	info := struct {
		Pid         uint32                       `json:"pid"`
		Status      string                       `json:"processStatus"`
		RuntimeType string                       `json:"runtimeType"`
		Config      *runtimeapi.PodSandboxConfig `json:"config"`
		RuntimeSpec *specs.Spec                  `json:"runtimeSpec"`
	}{rec.Pid, status, "io.containerd.runsc.v1", cfg, spec}
	b, _ := json.Marshal(info)
	return string(b)
}

// containerCount is how many containers runsc keeps in the sandbox, its
// root container included, from runsc's state files (no runsc process).
func (c *Controller) containerCount(_ context.Context, rec record) string {
	return strconv.Itoa(len(c.client(rec).Containers(rec.ID)))
}

// Metrics returns the sandbox cgroup's metrics in the cgroups v1/v2 type
// CRI decodes for PodSandboxStats.
func (c *Controller) Metrics(ctx context.Context, id string) (*types.Metric, error) {
	_, rec, err := c.running(id)
	if err != nil {
		return nil, err
	}
	data, err := cgroupMetrics(rec.SandboxCgroup)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s metrics: %w", id, err)
	}
	anyData, err := typeurl.MarshalAnyToProto(data)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s metrics: %w", id, err)
	}
	return &types.Metric{Timestamp: timestamppb.Now(), ID: id, Data: anyData}, nil
}

// Update accepts changes of the sandbox record's metadata (labels,
// extensions). Resource changes of a running runsc sandbox are not
// supported: runsc sizes the sandbox at create.
func (c *Controller) Update(ctx context.Context, id string, info sandbox.Sandbox, fields ...string) error {
	s, err := c.get(id)
	if err != nil {
		return err
	}
	for _, f := range fields {
		switch {
		case f == "labels" || strings.HasPrefix(f, "labels."):
			s.mu.Lock()
			s.rec.Labels = info.Labels
			rec := s.rec
			s.mu.Unlock()
			if err := writeRecord(s.recordPath, rec); err != nil {
				return err
			}
		case f == "extensions" || strings.HasPrefix(f, "extensions."):
		default:
			return fmt.Errorf("sandbox %s: updating %q of a runsc sandbox: %w", id, f, errdefs.ErrNotImplemented)
		}
	}
	return nil
}
