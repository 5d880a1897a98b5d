package runtime

import (
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// IOOwner is who must own a container's stdio: the host uid/gid that the
// container's process user maps to in a user-namespaced pod.
type IOOwner struct {
	UID, GID uint32
}

// ioOwner derives the stdio owner of a container from its spec, as runc's
// shim is told through IoUid/IoGid: the process user mapped through the
// uid/gid mappings of its user namespace. nil when the container has no
// user namespace with mappings (its stdio stays root's).
func ioOwner(spec *specs.Spec) (*IOOwner, error) {
	if spec.Linux == nil || len(spec.Linux.UIDMappings) == 0 || namespace(spec, specs.UserNamespace) == nil {
		return nil, nil
	}
	var user specs.User
	if spec.Process != nil {
		user = spec.Process.User
	}
	uid, ok := toHost(spec.Linux.UIDMappings, user.UID)
	if !ok {
		return nil, fmt.Errorf("process uid %d is not mapped by the user namespace's uid mappings: %w", user.UID, errdefs.ErrInvalidArgument)
	}
	gid, ok := toHost(spec.Linux.GIDMappings, user.GID)
	if !ok {
		return nil, fmt.Errorf("process gid %d is not mapped by the user namespace's gid mappings: %w", user.GID, errdefs.ErrInvalidArgument)
	}
	return &IOOwner{UID: uid, GID: gid}, nil
}

// toHost maps a container id to the host through mappings.
func toHost(mappings []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, m := range mappings {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}
