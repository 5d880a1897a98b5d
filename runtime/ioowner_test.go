package runtime

import (
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestIOOwner(t *testing.T) {
	userns := []specs.LinuxNamespace{{Type: specs.UserNamespace}}
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000000, Size: 65536}}
	for _, tc := range []struct {
		name    string
		spec    specs.Spec
		want    *IOOwner
		wantErr bool
	}{
		{"no linux", specs.Spec{}, nil, false},
		{"no userns", specs.Spec{Linux: &specs.Linux{UIDMappings: maps, GIDMappings: maps}}, nil, false},
		{"userns without mappings", specs.Spec{Linux: &specs.Linux{Namespaces: userns}}, nil, false},
		{"root maps to the base", specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: userns, UIDMappings: maps, GIDMappings: maps}}, &IOOwner{1000000, 1000000}, false},
		{"user 1000", specs.Spec{Process: &specs.Process{User: specs.User{UID: 1000, GID: 2000}}, Linux: &specs.Linux{Namespaces: userns, UIDMappings: maps, GIDMappings: maps}}, &IOOwner{1001000, 1002000}, false},
		{"second range", specs.Spec{Process: &specs.Process{User: specs.User{UID: 70000, GID: 0}}, Linux: &specs.Linux{Namespaces: userns,
			UIDMappings: append(maps, specs.LinuxIDMapping{ContainerID: 65536, HostID: 5000000, Size: 65536}), GIDMappings: maps}}, &IOOwner{5000000 + 70000 - 65536, 1000000}, false},
		{"unmapped uid", specs.Spec{Process: &specs.Process{User: specs.User{UID: 65536}}, Linux: &specs.Linux{Namespaces: userns, UIDMappings: maps, GIDMappings: maps}}, nil, true},
		{"no gid mappings", specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: userns, UIDMappings: maps}}, nil, true},
		{"overflowing range", specs.Spec{Process: &specs.Process{User: specs.User{UID: 4294967295}}, Linux: &specs.Linux{Namespaces: userns,
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 4294967295, HostID: 7, Size: 4294967295}}, GIDMappings: maps}}, &IOOwner{7, 1000000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ioOwner(&tc.spec)
			if tc.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("ioOwner = %+v, want %+v", got, tc.want)
			}
		})
	}
}
