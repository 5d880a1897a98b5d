package sandbox

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestExpandSlice(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"a-b-c.slice", "a.slice/a-b.slice/a-b-c.slice"},
		{"-.slice", ""},
		{".slice", ""},
		{"kubepods.slice", "kubepods.slice"},
		{"kubepods-besteffort-pod123.slice", "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := expandSlice(tc.in); got != tc.want {
				t.Errorf("expandSlice(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCgroupRelPath(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"cgroupfs", "/kubepods/pod1/abc", "/kubepods/pod1/abc"},
		{"cgroupfs default", "/k8s.io/abc", "/k8s.io/abc"},
		{"systemd scope", "kubepods-pod1.slice:cri-containerd:abc", "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope"},
		{"systemd nested scope", "kubepods-besteffort-pod1.slice:cri-containerd:abc", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope"},
		{"bare slice", "kubepods-pod1.slice", "/kubepods.slice/kubepods-pod1.slice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cgroupRelPath(tc.in); got != tc.want {
				t.Errorf("cgroupRelPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *runtimeapi.DNSConfig
		want string
	}{
		{"empty", &runtimeapi.DNSConfig{}, ""},
		{
			"full",
			&runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10", "8.8.8.8"},
				Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
				Options:  []string{"ndots:5", "timeout:1"},
			},
			"search default.svc.cluster.local svc.cluster.local cluster.local\n" +
				"nameserver 10.96.0.10\n" +
				"nameserver 8.8.8.8\n" +
				"options ndots:5 timeout:1\n",
		},
		{"servers only", &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}}, "nameserver 1.1.1.1\n"},
		{"searches only", &runtimeapi.DNSConfig{Searches: []string{"example.com"}}, "search example.com\n"},
		{"options only", &runtimeapi.DNSConfig{Options: []string{"ndots:2"}}, "options ndots:2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolvConf(tc.in); got != tc.want {
				t.Errorf("resolvConf() = %q, want %q", got, tc.want)
			}
		})
	}
}
