package sandbox

import (
	"math"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestValidatePodConfig(t *testing.T) {
	res := func(r *runtimeapi.LinuxContainerResources) *runtimeapi.PodSandboxConfig {
		return &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{Resources: r}}
	}
	sysctls := func(m map[string]string, hostNet bool) *runtimeapi.PodSandboxConfig {
		c := &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{Sysctls: m}}
		if hostNet {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
		}
		return c
	}
	dns := func(d *runtimeapi.DNSConfig) *runtimeapi.PodSandboxConfig {
		return &runtimeapi.PodSandboxConfig{DnsConfig: d}
	}
	for _, tc := range []struct {
		name string
		cfg  *runtimeapi.PodSandboxConfig
		ok   bool
	}{
		{"empty", &runtimeapi.PodSandboxConfig{}, true},
		{"kubelet-like resources", res(&runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 256 << 20, CpusetCpus: "0-1,3"}), true},
		{"unlimited quota", res(&runtimeapi.LinuxContainerResources{CpuQuota: -1}), true},
		{"negative period", res(&runtimeapi.LinuxContainerResources{CpuPeriod: -1}), false},
		{"period too long", res(&runtimeapi.LinuxContainerResources{CpuPeriod: 2_000_000}), false},
		{"period too short", res(&runtimeapi.LinuxContainerResources{CpuPeriod: 10}), false},
		{"negative quota", res(&runtimeapi.LinuxContainerResources{CpuQuota: -5}), false},
		{"huge quota", res(&runtimeapi.LinuxContainerResources{CpuQuota: math.MaxInt64}), false},
		{"negative shares", res(&runtimeapi.LinuxContainerResources{CpuShares: -2}), false},
		{"shares 1", res(&runtimeapi.LinuxContainerResources{CpuShares: 1}), false},
		{"huge shares", res(&runtimeapi.LinuxContainerResources{CpuShares: math.MaxInt64}), false},
		{"negative memory", res(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}), false},
		{"overflowing memory", res(&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: math.MaxInt64}), false},
		{"bad swap", res(&runtimeapi.LinuxContainerResources{MemorySwapLimitInBytes: -2}), false},
		{"oom score", res(&runtimeapi.LinuxContainerResources{OomScoreAdj: 5000}), false},
		{"cpuset garbage", res(&runtimeapi.LinuxContainerResources{CpusetCpus: "0-"}), false},
		{"cpuset reversed", res(&runtimeapi.LinuxContainerResources{CpusetCpus: "3-1"}), false},
		{"cpuset huge", res(&runtimeapi.LinuxContainerResources{CpusetMems: "99999999999"}), false},
		{"unified traversal", res(&runtimeapi.LinuxContainerResources{Unified: map[string]string{"../../cgroup.procs": "1"}}), false},
		{"unified ok", res(&runtimeapi.LinuxContainerResources{Unified: map[string]string{"memory.high": "1000000"}}), true},
		{"hugepage bad", res(&runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "../2MB", Limit: 1}}}), false},
		{"overhead negative", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{Overhead: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -4}}}, false},
		{"sysctl namespaced", sysctls(map[string]string{"kernel.shm_rmid_forced": "1", "net.ipv4.ip_local_port_range": "1024 65535", "fs.mqueue.msg_max": "10"}, false), true},
		{"sysctl slash form", sysctls(map[string]string{"net/ipv4/ip_forward": "1"}, false), true},
		{"sysctl host-level", sysctls(map[string]string{"kernel.core_pattern": "|/bin/sh"}, false), false},
		{"sysctl vm", sysctls(map[string]string{"vm.overcommit_memory": "1"}, false), false},
		{"sysctl malformed name", sysctls(map[string]string{"net..x": "1"}, false), false},
		{"sysctl traversal", sysctls(map[string]string{"net/../../x": "1"}, false), false},
		{"sysctl newline value", sysctls(map[string]string{"kernel.shmmax": "1\n2"}, false), false},
		{"sysctl empty value", sysctls(map[string]string{"kernel.shmmax": ""}, false), false},
		{"net sysctl on host network", sysctls(map[string]string{"net.ipv4.ip_forward": "1"}, true), false},
		{"dns ok", dns(&runtimeapi.DNSConfig{Servers: []string{"10.0.0.10", "fd00::a"}, Searches: []string{"ns.svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5", "edns0"}}), true},
		{"dns server injection", dns(&runtimeapi.DNSConfig{Servers: []string{"1.1.1.1\nnameserver 6.6.6.6"}}), false},
		{"dns server name", dns(&runtimeapi.DNSConfig{Servers: []string{"dns.example.com"}}), false},
		{"dns too many servers", dns(&runtimeapi.DNSConfig{Servers: []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"}}), false},
		{"dns search injection", dns(&runtimeapi.DNSConfig{Searches: []string{"a.b options rotate"}}), false},
		{"dns option injection", dns(&runtimeapi.DNSConfig{Options: []string{"ndots:5\nnameserver 6.6.6.6"}}), false},
		{"dns option spaces", dns(&runtimeapi.DNSConfig{Options: []string{"a b"}}), false},
		{"hostname newline", &runtimeapi.PodSandboxConfig{Hostname: "a\nb"}, false},
		{"hostname too long", &runtimeapi.PodSandboxConfig{Hostname: strings.Repeat("a", 65)}, false},
		{"hostname slash", &runtimeapi.PodSandboxConfig{Hostname: "../etc"}, false},
		{"cgroup parent path", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/burstable/pod1"}}, true},
		{"cgroup parent slice", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "kubepods-besteffort-pod1.slice"}}, true},
		{"cgroup parent traversal", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/../../x"}}, false},
		{"cgroup parent relative", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "kubepods"}}, false},
		{"userns overflow", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
			UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{{ContainerId: 0, HostId: math.MaxUint32, Length: 65536}}, Gids: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}}},
		}}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validatePodConfig(tc.cfg)
			if tc.ok && err != nil {
				t.Fatalf("validatePodConfig = %v, want nil", err)
			}
			if !tc.ok && !errdefs.IsInvalidArgument(err) {
				t.Fatalf("validatePodConfig = %v, want InvalidArgument", err)
			}
		})
	}
}

func TestValidateLinuxResources(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	i := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name string
		r    *specs.LinuxResources
		ok   bool
	}{
		{"nil", nil, true},
		{"kubelet-like", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u(1024), Quota: i(50000), Period: u(100000)}, Memory: &specs.LinuxMemory{Limit: i(1 << 30)}}, true},
		{"unlimited", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i(-1)}, Memory: &specs.LinuxMemory{Limit: i(-1), Swap: i(-1)}}, true},
		// What CRI makes of cpu_shares = -2 and cpu_period = -1.
		{"wrapped shares", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u(math.MaxUint64 - 1)}}, false},
		{"wrapped period", &specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u(math.MaxUint64)}}, false},
		{"negative quota", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i(-7)}}, false},
		{"negative memory", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(-7)}}, false},
		{"huge memory", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(math.MaxInt64)}}, false},
		{"cpuset", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "a"}}, false},
		{"unified", &specs.LinuxResources{Unified: map[string]string{"memory.max/../../x": "1"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateLinuxResources(tc.r)
			if tc.ok && err != nil {
				t.Fatalf("= %v, want nil", err)
			}
			if !tc.ok && !errdefs.IsInvalidArgument(err) {
				t.Fatalf("= %v, want InvalidArgument", err)
			}
		})
	}
}
