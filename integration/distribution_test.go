//go:build integration

package integration

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

// TestPluginsListed: our controller, runtime and core load as "ok" next to
// the stock plugins.
func TestPluginsListed(t *testing.T) {
	d := harness.Start(t, harness.Options{SkipImages: true})
	out, err := d.Ctr("plugins", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`io\.containerd\.sandbox\.controller\.v1\s+runsc\s+.*\bok\b`,
		`io\.containerd\.runtime\.v2\s+runsc\s+.*\bok\b`,
		`io\.containerd\.runtime\.v2\s+task\s+.*\bok\b`,
		`io\.containerd\.shimless\.v1\s+runsc\s+.*\bok\b`,
		`io\.containerd\.grpc\.v1\s+cri\s+.*\bok\b`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("ctr plugins ls has no line matching %q:\n%s", want, out)
		}
	}
}

// TestRuncPodLogs: a runc pod with a busybox container whose output is read
// back through the CRI log path; nothing is left afterwards.
func TestRuncPodLogs(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	pod := d.PodConfig("runc-logs")
	podID := d.RunPod(pod, "runc")
	ctr := harness.ContainerConfig("echo", "sh", "-c", "echo hello from runc; echo to stderr >&2; exit 7")
	id := d.StartContainer(podID, pod, ctr)
	st := d.WaitExited(id, 30*time.Second)
	if st.ExitCode != 7 {
		t.Errorf("exit code %d, want 7", st.ExitCode)
	}
	lines, err := d.ContainerLog(pod, ctr)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stdout hello from runc", "stderr to stderr"} {
		if !slices.Contains(lines, want) {
			t.Errorf("log %q lacks %q", lines, want)
		}
	}
	ctx := context.Background()
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if leaks := d.Leaks(); len(leaks) > 0 {
		t.Errorf("after pod removal, still on the host:\n%s", strings.Join(leaks, "\n"))
	}
}

// TestRuncUserNamespaceIOOwnership: on runc, a hostUsers:false pod's
// container writes its logs: CRI's IoUid/IoGid (runc's task options) still
// reach the runc shim through the router, as upstream (containerd's
// TestIssue10598 case).
func TestRuncUserNamespaceIOOwnership(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	pod := d.PodConfig("runc-userns")
	c := harness.ContainerConfig("userns", "sh", "-c", "echo uid=$(id -u); echo map $(cat /proc/self/uid_map); echo to-stderr >&2")
	harness.UserNamespace(pod, 65536*7, c)
	podID := d.RunPod(pod, "runc")
	id := d.StartContainer(podID, pod, c)
	if code := d.WaitExited(id, 30*time.Second).ExitCode; code != 0 {
		t.Errorf("exit code %d", code)
	}
	lines, err := d.ContainerLog(pod, c)
	if err != nil {
		t.Fatal(err)
	}
	// echo collapses uid_map's padding: "map 0 458752 65536".
	for _, want := range []string{"stdout uid=0", "stdout map 0 458752 65536", "stderr to-stderr"} {
		if !slices.Contains(lines, want) {
			t.Errorf("log %q lacks %q", lines, want)
		}
	}
	stopAndRemove(t, d, podID)
}
