package runtime

import (
	"testing"

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
