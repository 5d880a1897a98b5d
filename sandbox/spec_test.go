package sandbox

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	testID    = "abc123"
	testNS    = "k8s.io"
	testNetNS = "/var/run/netns/cni-1234"
)

// testPodConfig builds a pod config with the given Linux settings.
func testPodConfig(linux *runtimeapi.LinuxPodSandboxConfig) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{Linux: linux}
}

// testNSOptions builds Linux pod settings with the given namespace options.
func testNSOptions(opts *runtimeapi.NamespaceOption) *runtimeapi.LinuxPodSandboxConfig {
	return &runtimeapi.LinuxPodSandboxConfig{
		SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: opts},
	}
}

// findNamespace returns the spec's namespace of type typ.
func findNamespace(spec *specs.Spec, typ specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == typ {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

func testPtr[T any](v T) *T { return &v }

func TestBuildSpec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      specInput
		wantErr string
		check   func(t *testing.T, res *specResult)
	}{
		{
			name: "plain pod with netns",
			in:   specInput{ID: testID, Namespace: testNS, Config: testPodConfig(nil), NetNSPath: testNetNS, Rootfs: "/rootfs"},
			check: func(t *testing.T, res *specResult) {
				ns, ok := findNamespace(res.Spec, specs.NetworkNamespace)
				if !ok || ns.Path != testNetNS {
					t.Errorf("network namespace = %+v (present %v), want path %q", ns, ok, testNetNS)
				}
				for _, typ := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace} {
					if _, ok := findNamespace(res.Spec, typ); !ok {
						t.Errorf("missing %s namespace", typ)
					}
				}
				if _, ok := findNamespace(res.Spec, specs.UserNamespace); ok {
					t.Error("unexpected user namespace")
				}
				if got := res.Spec.Annotations[AnnotationContainerType]; got != ContainerTypeSandbox {
					t.Errorf("annotation %s = %q, want %q", AnnotationContainerType, got, ContainerTypeSandbox)
				}
				if got := res.Spec.Annotations[AnnotationSandboxID]; got != testID {
					t.Errorf("annotation %s = %q, want %q", AnnotationSandboxID, got, testID)
				}
				if _, ok := res.Spec.Annotations[AnnotationCgroupParent]; ok {
					t.Errorf("unexpected annotation %s", AnnotationCgroupParent)
				}
				if res.Spec.Root == nil || !res.Spec.Root.Readonly || res.Spec.Root.Path != "/rootfs" {
					t.Errorf("root = %+v, want readonly /rootfs", res.Spec.Root)
				}
				if got := res.Spec.Process.Args; !reflect.DeepEqual(got, []string{PauseBinary}) {
					t.Errorf("process args = %q, want [%s]", got, PauseBinary)
				}
				want := "/" + testNS + "/" + testID
				if res.CgroupsPath != want || res.Spec.Linux.CgroupsPath != want {
					t.Errorf("cgroups path = %q (spec %q), want %q", res.CgroupsPath, res.Spec.Linux.CgroupsPath, want)
				}
				if res.SandboxCgroup != want {
					t.Errorf("sandbox cgroup = %q, want %q", res.SandboxCgroup, want)
				}
				if len(res.Flags) != 0 {
					t.Errorf("flags = %v, want none", res.Flags)
				}
				if res.HostNetwork {
					t.Error("HostNetwork = true, want false")
				}
				if res.Spec.Linux.Resources != nil {
					t.Errorf("resources = %+v, want nil", res.Spec.Linux.Resources)
				}
			},
		},
		{
			name: "nil config",
			in:   specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS},
			check: func(t *testing.T, res *specResult) {
				if ns, ok := findNamespace(res.Spec, specs.NetworkNamespace); !ok || ns.Path != testNetNS {
					t.Errorf("network namespace = %+v (present %v), want path %q", ns, ok, testNetNS)
				}
			},
		},
		{
			name: "host network without netns",
			in: specInput{ID: testID, Namespace: testNS, Config: testPodConfig(testNSOptions(&runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_NODE,
			}))},
			check: func(t *testing.T, res *specResult) {
				if ns, ok := findNamespace(res.Spec, specs.NetworkNamespace); ok {
					t.Errorf("unexpected network namespace %+v", ns)
				}
				if got := res.Flags["network"]; got != "host" {
					t.Errorf(`Flags["network"] = %q, want "host"`, got)
				}
				if !res.HostNetwork {
					t.Error("HostNetwork = false, want true")
				}
			},
		},
		{
			name: "no network",
			in:   specInput{ID: testID, Namespace: testNS, Config: testPodConfig(nil), NoNetwork: true},
			check: func(t *testing.T, res *specResult) {
				if ns, ok := findNamespace(res.Spec, specs.NetworkNamespace); ok {
					t.Errorf("unexpected network namespace %+v", ns)
				}
				if got := res.Flags["network"]; got != "none" {
					t.Errorf(`Flags["network"] = %q, want "none"`, got)
				}
				if res.HostNetwork {
					t.Error("HostNetwork = true, want false")
				}
			},
		},
		{
			name:    "missing netns",
			in:      specInput{ID: testID, Namespace: testNS, Config: testPodConfig(nil)},
			wantErr: "network namespace",
		},
		{
			name: "cgroupfs parent",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(&runtimeapi.LinuxPodSandboxConfig{
				CgroupParent: "/kubepods/pod123",
			})},
			check: func(t *testing.T, res *specResult) {
				want := "/kubepods/pod123/" + testID
				if res.CgroupsPath != want || res.Spec.Linux.CgroupsPath != want {
					t.Errorf("cgroups path = %q (spec %q), want %q", res.CgroupsPath, res.Spec.Linux.CgroupsPath, want)
				}
				if res.SandboxCgroup != "/kubepods/pod123" {
					t.Errorf("sandbox cgroup = %q, want /kubepods/pod123", res.SandboxCgroup)
				}
				if got := res.Spec.Annotations[AnnotationCgroupParent]; got != "/kubepods/pod123" {
					t.Errorf("annotation %s = %q, want /kubepods/pod123", AnnotationCgroupParent, got)
				}
				if _, ok := res.Flags["systemd-cgroup"]; ok {
					t.Error("unexpected systemd-cgroup flag")
				}
			},
		},
		{
			name: "systemd parent",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(&runtimeapi.LinuxPodSandboxConfig{
				CgroupParent: "kubepods-besteffort-pod123.slice",
			})},
			check: func(t *testing.T, res *specResult) {
				want := "kubepods-besteffort-pod123.slice:cri-containerd:" + testID
				if res.CgroupsPath != want || res.Spec.Linux.CgroupsPath != want {
					t.Errorf("cgroups path = %q (spec %q), want %q", res.CgroupsPath, res.Spec.Linux.CgroupsPath, want)
				}
				if res.SandboxCgroup != "kubepods-besteffort-pod123.slice" {
					t.Errorf("sandbox cgroup = %q, want kubepods-besteffort-pod123.slice", res.SandboxCgroup)
				}
				if got := res.Flags["systemd-cgroup"]; got != "true" {
					t.Errorf(`Flags["systemd-cgroup"] = %q, want "true"`, got)
				}
				if got := res.Spec.Annotations[AnnotationCgroupParent]; got != "kubepods-besteffort-pod123.slice" {
					t.Errorf("annotation %s = %q", AnnotationCgroupParent, got)
				}
			},
		},
		{
			name: "pod annotations",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: &runtimeapi.PodSandboxConfig{
				Annotations: map[string]string{
					"dev.gvisor.spec.mount.vol.share": "pod",
					"other.io/x":                      "y",
					AnnotationSandboxID:               "spoofed",
					AnnotationContainerType:           "container",
				},
			}, AnnotationGlobs: []string{"dev.gvisor.*", "io.kubernetes.cri.*"}},
			check: func(t *testing.T, res *specResult) {
				if got, ok := res.Spec.Annotations["dev.gvisor.spec.mount.vol.share"]; !ok || got != "pod" {
					t.Errorf(`mount hint = %q (present %v), want "pod"`, got, ok)
				}
				if got, ok := res.Spec.Annotations["other.io/x"]; ok {
					t.Errorf("annotation other.io/x = %q passed through", got)
				}
				if got := res.Spec.Annotations[AnnotationSandboxID]; got != testID {
					t.Errorf("annotation %s = %q, want %q", AnnotationSandboxID, got, testID)
				}
				if got := res.Spec.Annotations[AnnotationContainerType]; got != ContainerTypeSandbox {
					t.Errorf("annotation %s = %q, want %q", AnnotationContainerType, got, ContainerTypeSandbox)
				}
			},
		},
		{
			name: "userns pod with mappings",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(testNSOptions(&runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{
					Mode: runtimeapi.NamespaceMode_POD,
					Uids: []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}},
					Gids: []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 200000, Length: 1000}, {ContainerId: 1000, HostId: 300000, Length: 1}},
				},
			}))},
			check: func(t *testing.T, res *specResult) {
				ns, ok := findNamespace(res.Spec, specs.UserNamespace)
				if !ok || ns.Path != "" {
					t.Errorf("user namespace = %+v (present %v), want one with empty path", ns, ok)
				}
				wantUIDs := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				if !reflect.DeepEqual(res.Spec.Linux.UIDMappings, wantUIDs) {
					t.Errorf("UIDMappings = %+v, want %+v", res.Spec.Linux.UIDMappings, wantUIDs)
				}
				wantGIDs := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 1}}
				if !reflect.DeepEqual(res.Spec.Linux.GIDMappings, wantGIDs) {
					t.Errorf("GIDMappings = %+v, want %+v", res.Spec.Linux.GIDMappings, wantGIDs)
				}
			},
		},
		{
			name: "userns node",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(testNSOptions(&runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
			}))},
			check: func(t *testing.T, res *specResult) {
				if ns, ok := findNamespace(res.Spec, specs.UserNamespace); ok {
					t.Errorf("unexpected user namespace %+v", ns)
				}
				if res.Spec.Linux.UIDMappings != nil || res.Spec.Linux.GIDMappings != nil {
					t.Errorf("unexpected mappings %+v %+v", res.Spec.Linux.UIDMappings, res.Spec.Linux.GIDMappings)
				}
			},
		},
		{
			name: "userns pod without mappings",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(testNSOptions(&runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD},
			}))},
			wantErr: "mappings",
		},
		{
			name: "userns pod with uids only",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(testNSOptions(&runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{
					Mode: runtimeapi.NamespaceMode_POD,
					Uids: []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}},
				},
			}))},
			wantErr: "mappings",
		},
		{
			name: "userns target",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(testNSOptions(&runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET},
			}))},
			wantErr: "not supported",
		},
		{
			name: "resources",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(&runtimeapi.LinuxPodSandboxConfig{
				Resources: &runtimeapi.LinuxContainerResources{
					CpuShares:          512,
					CpuQuota:           50000,
					CpuPeriod:          100000,
					MemoryLimitInBytes: 256 << 20,
				},
			})},
			check: func(t *testing.T, res *specResult) {
				want := &specs.LinuxResources{
					CPU: &specs.LinuxCPU{
						Shares: testPtr(uint64(512)),
						Quota:  testPtr(int64(50000)),
						Period: testPtr(uint64(100000)),
					},
					Memory: &specs.LinuxMemory{Limit: testPtr(int64(256 << 20))},
				}
				if got := res.Spec.Linux.Resources; !reflect.DeepEqual(got, want) {
					t.Errorf("resources = %s, want %s", fmtResources(got), fmtResources(want))
				}
			},
		},
		{
			name: "memory only resources",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(&runtimeapi.LinuxPodSandboxConfig{
				Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 30},
			})},
			check: func(t *testing.T, res *specResult) {
				want := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: testPtr(int64(1 << 30))}}
				if got := res.Spec.Linux.Resources; !reflect.DeepEqual(got, want) {
					t.Errorf("resources = %s, want %s", fmtResources(got), fmtResources(want))
				}
			},
		},
		{
			name: "zero resources",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Config: testPodConfig(&runtimeapi.LinuxPodSandboxConfig{
				Resources: &runtimeapi.LinuxContainerResources{},
			})},
			check: func(t *testing.T, res *specResult) {
				if got := res.Spec.Linux.Resources; got != nil {
					t.Errorf("resources = %s, want nil", fmtResources(got))
				}
			},
		},
		{
			name: "sysctls and hostname",
			in: specInput{ID: testID, Namespace: testNS, NetNSPath: testNetNS, Hostname: "my-pod", Config: testPodConfig(&runtimeapi.LinuxPodSandboxConfig{
				Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "0"},
			})},
			check: func(t *testing.T, res *specResult) {
				want := map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "0"}
				if !reflect.DeepEqual(res.Spec.Linux.Sysctl, want) {
					t.Errorf("sysctl = %v, want %v", res.Spec.Linux.Sysctl, want)
				}
				if res.Spec.Hostname != "my-pod" {
					t.Errorf("hostname = %q, want my-pod", res.Spec.Hostname)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := buildSpec(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("buildSpec() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("buildSpec() error = %v", err)
			}
			if res == nil || res.Spec == nil || res.Spec.Linux == nil || res.Spec.Process == nil {
				t.Fatalf("buildSpec() = %+v, want a spec with Linux and Process", res)
			}
			tc.check(t, res)
		})
	}
}

func TestResources(t *testing.T) {
	if got := resources(nil); got != nil {
		t.Errorf("resources(nil) = %s, want nil", fmtResources(got))
	}
}

// fmtResources renders resources with their pointers followed.
func fmtResources(r *specs.LinuxResources) string {
	if r == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString("{")
	if c := r.CPU; c != nil {
		b.WriteString("CPU:{")
		if c.Shares != nil {
			b.WriteString(" shares=" + testItoa(int64(*c.Shares)))
		}
		if c.Quota != nil {
			b.WriteString(" quota=" + testItoa(*c.Quota))
		}
		if c.Period != nil {
			b.WriteString(" period=" + testItoa(int64(*c.Period)))
		}
		b.WriteString(" }")
	}
	if m := r.Memory; m != nil && m.Limit != nil {
		b.WriteString(" Memory:{limit=" + testItoa(*m.Limit) + "}")
	}
	b.WriteString("}")
	return b.String()
}

func testItoa(v int64) string { return strconv.FormatInt(v, 10) }
