package sandbox

import (
	"maps"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/sandbox/runsc"
)

// Annotations runsc reads to group a pod's containers into one sandbox
// (gVisor's vocabulary lives in sandbox/runsc).
const (
	AnnotationContainerType = runsc.AnnotationContainerType
	AnnotationSandboxID     = runsc.AnnotationSandboxID
	ContainerTypeSandbox    = runsc.ContainerTypeSandbox
	// AnnotationCgroupParent makes runsc put the pod's limits on the pod
	// cgroup.
	AnnotationCgroupParent = "dev.gvisor.spec.cgroup-parent"
)

// PauseBinary is the sandbox root process's path inside its rootfs.
const PauseBinary = "/shimless-pause"

// pauseUID is the unprivileged user the root process runs as (as the stock
// pause image does).
const pauseUID = 65535

// specInput is everything the sandbox's root container spec depends on.
type specInput struct {
	ID        string
	Namespace string // containerd namespace, for the default cgroup path
	Config    *runtimeapi.PodSandboxConfig
	NetNSPath string
	Rootfs    string
	Hostname  string // resolved hostname (config's, or the host's for host-network pods)
	// NoNetwork gives the sandbox no network at all (runsc --network=none):
	// standalone containers created without a network namespace.
	NoNetwork bool
	// AnnotationGlobs are the CRI handler's pod_annotations: only pod
	// annotations they match reach the spec (as with stock CRI).
	AnnotationGlobs []string
	// Policy is shimless's rule for dev.gvisor.* annotations on top.
	Policy AnnotationPolicy
}

// specResult is the spec plus the runsc flags this sandbox needs.
type specResult struct {
	Spec  *specs.Spec
	Flags map[string]string
	// CgroupsPath is the root container's cgroup (cgroupfs path or
	// systemd slice:prefix:name).
	CgroupsPath string
	// SandboxCgroup holds the sandbox's processes and the pod's limits: the
	// cgroup parent when set (runsc's cgroup-parent annotation makes it the
	// sandbox cgroup and CgroupsPath an empty child), else CgroupsPath.
	SandboxCgroup string
	HostNetwork   bool
}

// hostNetwork reports whether the pod uses the host's network.
func hostNetwork(cfg *runtimeapi.PodSandboxConfig) bool {
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
}

// cgroupsPathFor returns the sandbox's cgroup under parent: a systemd
// "slice:prefix:name" when parent is a slice, a cgroupfs path otherwise.
func cgroupsPathFor(namespace, id, parent string) (p string, systemd bool) {
	switch {
	case parent == "":
		return path.Join("/", namespace, id), false
	case strings.HasSuffix(parent, ".slice"):
		return parent + ":cri-containerd:" + id, true
	default:
		return path.Join(parent, id), false
	}
}

// buildSpec generates the OCI spec of a pod sandbox's root container.
func buildSpec(in specInput) (*specResult, error) {
	cfg := in.Config
	if cfg == nil {
		cfg = &runtimeapi.PodSandboxConfig{}
	}
	if err := validatePodConfig(cfg); err != nil {
		return nil, err
	}
	linux := cfg.GetLinux()
	nsOpts := linux.GetSecurityContext().GetNamespaceOptions()
	res := &specResult{Flags: map[string]string{}, HostNetwork: hostNetwork(cfg)}

	annotations, err := podAnnotations(cfg.GetAnnotations(), in.AnnotationGlobs, in.Policy)
	if err != nil {
		return nil, err
	}
	maps.Copy(annotations, map[string]string{
		AnnotationContainerType: ContainerTypeSandbox,
		AnnotationSandboxID:     in.ID,
	})
	if md := cfg.GetMetadata(); md != nil {
		annotations["io.kubernetes.cri.sandbox-name"] = md.Name
		annotations["io.kubernetes.cri.sandbox-namespace"] = md.Namespace
		annotations["io.kubernetes.cri.sandbox-uid"] = md.Uid
	}
	if cfg.GetLogDirectory() != "" {
		annotations["io.kubernetes.cri.sandbox-log-directory"] = cfg.GetLogDirectory()
	}

	cgPath, systemd := cgroupsPathFor(in.Namespace, in.ID, linux.GetCgroupParent())
	res.CgroupsPath, res.SandboxCgroup = cgPath, cgPath
	if parent := linux.GetCgroupParent(); parent != "" {
		res.SandboxCgroup = parent
	}
	if systemd {
		res.Flags["systemd-cgroup"] = "true"
	}
	if parent := linux.GetCgroupParent(); parent != "" {
		annotations[AnnotationCgroupParent] = parent
	}

	namespaces := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
	}
	switch {
	case res.HostNetwork:
		res.Flags[runsc.FlagNetwork] = runsc.NetworkHost
	case in.NoNetwork:
		res.Flags[runsc.FlagNetwork] = runsc.NetworkNone
	default:
		if in.NetNSPath == "" {
			return nil, invalid("pod needs a network namespace but none was given")
		}
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.NetNSPath})
	}

	var uidMaps, gidMaps []specs.LinuxIDMapping
	if u := nsOpts.GetUsernsOptions(); u != nil {
		switch u.GetMode() {
		case runtimeapi.NamespaceMode_NODE:
		case runtimeapi.NamespaceMode_POD:
			if len(u.GetUids()) == 0 || len(u.GetGids()) == 0 {
				return nil, invalid("user namespace mode POD needs uid and gid mappings")
			}
			// runsc cannot join a user namespace by path; it creates one
			// from the mappings.
			namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			uidMaps, gidMaps = idMappings(u.GetUids()), idMappings(u.GetGids())
		default:
			return nil, invalid("user namespace mode %s is not supported for pods", u.GetMode())
		}
	}

	spec := &specs.Spec{
		Version:  specs.Version,
		Hostname: in.Hostname,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: true},
		Process: &specs.Process{
			Args:            []string{PauseBinary},
			Cwd:             "/",
			Env:             []string{"PATH=/"},
			User:            specs.User{UID: pauseUID, GID: pauseUID},
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Annotations: annotations,
		Linux: &specs.Linux{
			Namespaces:  namespaces,
			UIDMappings: uidMaps,
			GIDMappings: gidMaps,
			CgroupsPath: cgPath,
			Sysctl:      linux.GetSysctls(),
			Resources:   resources(linux.GetResources()),
		},
	}
	res.Spec = spec
	return res, nil
}

func idMappings(in []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, 0, len(in))
	for _, m := range in {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.ContainerId, HostID: m.HostId, Size: m.Length})
	}
	return out
}

// resources converts the pod's resources (sum of its containers plus
// overhead, as kubelet computes them) to the sandbox's OCI resources.
func resources(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	if r == nil {
		return nil
	}
	out := &specs.LinuxResources{}
	cpu := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CpuShares > 0 {
		s := uint64(r.CpuShares)
		cpu.Shares = &s
	}
	if r.CpuQuota > 0 {
		q := r.CpuQuota
		cpu.Quota = &q
	}
	if r.CpuPeriod > 0 {
		p := uint64(r.CpuPeriod)
		cpu.Period = &p
	}
	if *cpu != (specs.LinuxCPU{}) {
		out.CPU = cpu
	}
	if r.MemoryLimitInBytes > 0 {
		m := r.MemoryLimitInBytes
		out.Memory = &specs.LinuxMemory{Limit: &m}
	}
	if out.CPU == nil && out.Memory == nil {
		return nil
	}
	return out
}
