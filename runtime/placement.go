package runtime

import (
	"context"

	"github.com/containerd/containerd/v2/core/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shimless/shimless/sandbox"
	"github.com/shimless/shimless/sandbox/runsc"
)

// place attaches a new container to its sandbox: its pod's (CRI's
// container-type annotation "container"), a sandbox it is the root of
// ("sandbox": a gVisor-shim style pod's pause container), or its own
// private one (a standalone container, which then joins it like a pod's
// container: a root container would take its sandbox, and its exit
// status, down with it).
func (r *Runtime) place(ctx context.Context, id string, opts runtime.CreateOpts, spec *specs.Spec) (*sandbox.Handle, error) {
	req := sandbox.AttachRequest{
		ContainerID:    id,
		Cgroups:        cgroupsPath(spec),
		ContainerType:  spec.Annotations[runsc.AnnotationContainerType],
		SandboxID:      spec.Annotations[runsc.AnnotationSandboxID],
		RuntimeOptions: opts.RuntimeOptions,
	}
	if req.SandboxID == "" {
		req.SandboxID = opts.SandboxID
	}
	if ns := netns(spec); ns == nil {
		req.HostNetwork = true
	} else if ns.Path == "" {
		req.NoNetwork = true
	} else {
		req.NetNSPath = ns.Path
	}
	if req.ContainerType != runsc.ContainerTypeContainer && req.ContainerType != runsc.ContainerTypeSandbox {
		req.ContainerType = ""
	}
	h, err := r.sandboxes.Attach(ctx, req)
	if err != nil {
		return nil, err
	}
	if h.Kind() == sandbox.KindPrivate {
		if spec.Annotations == nil {
			spec.Annotations = map[string]string{}
		}
		spec.Annotations[runsc.AnnotationContainerType] = runsc.ContainerTypeContainer
		spec.Annotations[runsc.AnnotationSandboxID] = h.ID()
	}
	return h, nil
}

// userNamespaceByMappings drops the path of a user namespace that comes
// with uid/gid mappings: CRI points containers of user-namespaced pods at
// the pod's pinned namespace, which runsc's gofer cannot join ("error
// setting namespace of type user ... invalid argument"); runsc creates an
// equivalent one from the mappings.
func userNamespaceByMappings(spec *specs.Spec) {
	if spec.Linux == nil || len(spec.Linux.UIDMappings) == 0 {
		return
	}
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			spec.Linux.Namespaces[i].Path = ""
		}
	}
}

// privateSandboxID names a standalone container's own sandbox.
func privateSandboxID(id string) string { return sandbox.PrivateSandboxPrefix + id }

// cgroupsPath is the spec's cgroups path, or "".
func cgroupsPath(spec *specs.Spec) string {
	if spec.Linux == nil {
		return ""
	}
	return spec.Linux.CgroupsPath
}

// memoryLimit is the spec's memory limit, 0 for none.
func memoryLimit(spec *specs.Spec) int64 {
	if spec.Linux == nil || spec.Linux.Resources == nil || spec.Linux.Resources.Memory == nil || spec.Linux.Resources.Memory.Limit == nil {
		return 0
	}
	return max(*spec.Linux.Resources.Memory.Limit, 0)
}

// netns is the spec's network namespace, or nil.
func netns(spec *specs.Spec) *specs.LinuxNamespace { return namespace(spec, specs.NetworkNamespace) }

// namespace returns the spec's namespace of a type, or nil.
func namespace(spec *specs.Spec, typ specs.LinuxNamespaceType) *specs.LinuxNamespace {
	if spec.Linux == nil {
		return nil
	}
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == typ {
			return &spec.Linux.Namespaces[i]
		}
	}
	return nil
}
