package sandbox

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FuzzBuildSpec feeds buildSpec pod configs built from fuzz input
// (annotations, ids, resources, sysctls, DNS, hostname, cgroup parent) and
// checks its invariants: it never panics, every error is InvalidArgument,
// and a spec it accepts carries only the runsc flags the controller sets
// and no dev.gvisor.* annotation the policy refuses. Run longer with
// `make fuzz FUZZTIME=10m`.
func FuzzBuildSpec(f *testing.F) {
	f.Add("abc123", "dev.gvisor.internal.checkpoint.path", "/somehostdir", "dev.gvisor.*", false, int64(100000), int64(50000), int64(512), int64(256<<20), "kernel.shmmax", "1024", "10.0.0.10", "cluster.local", "ndots:5", "pod", "/kubepods/pod1")
	f.Add("abc123", "dev.gvisor.bundle.experimental-high-performance", "true", "dev.gvisor.*", true, int64(0), int64(-1), int64(0), int64(0), "net.ipv4.ip_forward", "1", "fd00::a", "svc", "edns0", "", "")
	f.Add("rootfs", "dev.gvisor.flag.debug", "true", "*", true, int64(-1), int64(-5), int64(-2), int64(-1), "kernel.core_pattern", "|/x", "1.1.1.1\nnameserver 6.6.6.6", "a b", "x\ny", "a\nb", "/../x")
	f.Add("../x", "dev.gvisor.spec.cgroup-parent", "/", "dev.gvisor.spec.*", false, int64(2_000_000), int64(1<<62), int64(1<<40), int64(1<<62), "net/../x", "", "dns", "", "", "", "kubepods.slice")
	f.Add("-x", "dev.gvisor.spec.mount.vol.share", "pod", "", false, int64(1000), int64(1000), int64(2), int64(1), "fs.mqueue.msg_max", "10", "", "", "", "h", "")
	f.Fuzz(func(t *testing.T, id, annKey, annValue, glob string, allow bool, period, quota, shares, memory int64, sysctl, sysctlValue, server, search, option, hostname, cgroupParent string) {
		cfg := &runtimeapi.PodSandboxConfig{
			Hostname:    hostname,
			Annotations: map[string]string{annKey: annValue, "io.kubernetes.cri.sandbox-id": "spoof"},
			DnsConfig:   &runtimeapi.DNSConfig{Servers: []string{server}, Searches: []string{search}, Options: []string{option}},
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				CgroupParent: cgroupParent,
				Sysctls:      map[string]string{sysctl: sysctlValue},
				Resources:    &runtimeapi.LinuxContainerResources{CpuPeriod: period, CpuQuota: quota, CpuShares: shares, MemoryLimitInBytes: memory},
			},
		}
		policy := AnnotationPolicy{}
		if allow {
			policy = AnnotationPolicy{AllowedBundles: []string{"experimental-high-performance"}, AllowFlagOverrides: true}
		}
		in := specInput{ID: id, Namespace: "k8s.io", Config: cfg, NetNSPath: "/var/run/netns/x", Rootfs: "/rootfs", Hostname: hostname, AnnotationGlobs: []string{glob}, Policy: policy}
		// The controller validates the id before buildSpec; do the same.
		if err := validatePodID(id); err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("id %q: %v is not InvalidArgument", id, err)
			}
			return
		}
		res, err := buildSpec(in)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
			return
		}
		for k, v := range res.Flags {
			switch {
			case k == "network" && (v == "host" || v == "none"):
			case k == "systemd-cgroup" && v == "true":
			default:
				t.Fatalf("runsc flag %s=%s is not one the controller sets", k, v)
			}
		}
		for k, v := range res.Spec.Annotations {
			if k == AnnotationCgroupParent {
				if v != cgroupParent {
					t.Fatalf("cgroup parent annotation %q is not the pod's cgroup parent %q", v, cgroupParent)
				}
				continue
			}
			if strings.HasPrefix(k, "dev.gvisor.") {
				if err := policy.Check(k, v); err != nil {
					t.Fatalf("refused annotation in spec: %v", err)
				}
				if ok := matchAnnotation([]string{glob}, k); !ok {
					t.Fatalf("annotation %s not allowed by pod_annotations %q", k, glob)
				}
			}
		}
		if got := res.Spec.Annotations[AnnotationSandboxID]; got != id {
			t.Fatalf("sandbox id annotation %q, want %q", got, id)
		}
		// Host paths in the spec: only the ones the controller chose.
		if res.Spec.Root.Path != "/rootfs" {
			t.Fatalf("root path %q", res.Spec.Root.Path)
		}
		for _, ns := range res.Spec.Linux.Namespaces {
			if ns.Path != "" && ns.Path != in.NetNSPath {
				t.Fatalf("namespace path %q", ns.Path)
			}
		}
		for _, m := range res.Spec.Mounts {
			if strings.HasPrefix(m.Source, "/") {
				t.Fatalf("host mount %+v", m)
			}
		}
		if strings.Contains(res.CgroupsPath, "..") {
			t.Fatalf("cgroups path %q", res.CgroupsPath)
		}
		// What goes into resolv.conf and the hostname file is line-safe.
		if strings.ContainsAny(hostname, "\n\r") || strings.Count(resolvConf(cfg.DnsConfig), "\n") > 3 {
			t.Fatalf("line injection accepted: hostname %q, resolv.conf %q", hostname, resolvConf(cfg.DnsConfig))
		}
		if _, err := json.Marshal(res.Spec); err != nil {
			t.Fatalf("spec does not marshal: %v", err)
		}
	})
}
