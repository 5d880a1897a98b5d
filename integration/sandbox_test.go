//go:build integration

package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

func podState(t *testing.T, d *harness.Daemon, id string) *runtimeapi.PodSandboxStatusResponse {
	t.Helper()
	resp, err := d.Runtime.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus(%s): %v", id, err)
	}
	return resp
}

// TestRunscPodLifecycle: run -> READY with a pid -> stop -> NOTREADY ->
// remove -> gone, with nothing left on the host.
func TestRunscPodLifecycle(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	ctx := context.Background()
	pod := d.PodConfig("runsc-life")
	pod.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"127.0.0.53"}, Searches: []string{"shimless.test"}}
	begin := time.Now()
	id := d.RunPod(pod, "runsc")
	t.Logf("pod started in %v", time.Since(begin))

	st := podState(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("state %s, want READY", st.Status.State)
	}
	if ip := st.Status.GetNetwork().GetIp(); ip == "" {
		t.Errorf("pod has no IP")
	}
	for _, key := range []string{"runscVersion", "platform", "runscRoot"} {
		if st.Info[key] == "" {
			t.Errorf("verbose info lacks %s: %v", key, st.Info)
		}
	}
	if !strings.Contains(st.Info["info"], `"runtimeSpec"`) || !strings.Contains(st.Info["info"], `"pid"`) {
		t.Errorf("verbose info[info] lacks pid/runtimeSpec: %s", st.Info["info"])
	}
	// The pod's files CRI mounts into containers were written.
	criDir := filepath.Join(d.Root, "io.containerd.grpc.v1.cri", "sandboxes", id)
	for file, want := range map[string]string{"hostname": "runsc-life\n", "resolv.conf": "nameserver 127.0.0.53"} {
		b, err := os.ReadFile(filepath.Join(criDir, file))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s = %q, %v; want it to contain %q", file, b, err, want)
		}
	}

	begin = time.Now()
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	t.Logf("pod stopped in %v", time.Since(begin))
	d.Eventually(5*time.Second, func() error {
		if s := podState(t, d, id).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			return &stateErr{s.String()}
		}
		return nil
	})
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); err == nil {
		t.Errorf("pod still known after removal")
	}
	if leaks := d.Leaks(); len(leaks) > 0 {
		t.Errorf("after pod removal, still on the host:\n%s", strings.Join(leaks, "\n"))
	}
	// The cgroup v1 OOM eventfd fires when the cgroup is removed: that is
	// not an OOM kill.
	if strings.Contains(d.Log(), "OOM kill in sandbox cgroup") {
		t.Errorf("a pod stop without any OOM logged an OOM kill")
	}
}

type stateErr struct{ s string }

func (e *stateErr) Error() string { return "pod is " + e.s }
