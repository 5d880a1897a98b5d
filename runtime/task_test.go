package runtime

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestUserNamespaceByMappings(t *testing.T) {
	mapping := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	for _, tc := range []struct {
		name     string
		linux    *specs.Linux
		wantPath string
	}{
		{"no linux section", nil, ""},
		{"path without mappings is kept", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/proc/1/ns/user"}}}, "/proc/1/ns/user"},
		{"path with mappings is dropped", &specs.Linux{UIDMappings: mapping, GIDMappings: mapping, Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/n"}, {Type: specs.UserNamespace, Path: "/proc/1/ns/user"}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &specs.Spec{Linux: tc.linux}
			userNamespaceByMappings(spec)
			if spec.Linux == nil {
				return
			}
			for _, ns := range spec.Linux.Namespaces {
				if ns.Type == specs.UserNamespace && ns.Path != tc.wantPath {
					t.Errorf("user namespace path %q, want %q", ns.Path, tc.wantPath)
				}
				if ns.Type == specs.NetworkNamespace && ns.Path != "/n" {
					t.Errorf("network namespace path changed to %q", ns.Path)
				}
			}
		})
	}
}

// An exec that its container's exit already ended (or that was deleted)
// cannot start: Start returns FailedPrecondition before touching runsc,
// and no second close of its exit channel can happen.
func TestExecStartAfterEnd(t *testing.T) {
	for _, st := range []runtime.Status{runtime.StoppedStatus, runtime.DeletedStatus} {
		e := &Exec{task: &Task{id: "c1"}, id: "e1", status: st, exited: make(chan struct{})}
		if err := e.Start(context.Background()); !errdefs.IsFailedPrecondition(err) {
			t.Errorf("Start of a %v exec: %v, want FailedPrecondition", st, err)
		}
	}
}
