//go:build integration

package integration

import (
	"context"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

// linux.maskedPaths and linux.readonlyPaths, which runsc ignores, are
// applied on every handler: a masked file reads empty and cannot run, a
// masked directory is empty, a read-only path cannot be written; the rest
// of the rootfs stays writable.
func TestRunscMaskedAndReadonlyPaths(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("paths-" + handler)
		podID := d.RunPod(pod, handler)
		c := harness.ContainerConfig("c", "sleep", "1000")
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			MaskedPaths:   []string{"/etc/passwd", "/tmp", "/proc/kcore", "/nonexistent"},
			ReadonlyPaths: []string{"/etc/group", "/proc/sys"},
		}}
		id := d.StartContainer(podID, pod, c)
		exec := func(cmd ...string) (string, int32) {
			t.Helper()
			r, err := d.Runtime.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 30})
			if err != nil {
				t.Fatalf("%v: %v", cmd, err)
			}
			return string(r.Stdout) + string(r.Stderr), r.ExitCode
		}
		if out, code := exec("ls", "-A", "/tmp"); code != 0 || out != "" {
			t.Errorf("masked /tmp: code %d, %q; want empty", code, out)
		}
		if out, code := exec("touch", "/tmp/x"); code == 0 {
			t.Errorf("touch in masked /tmp succeeded: %q", out)
		}
		if out, code := exec("sh", "-c", "echo x >> /etc/group"); code == 0 || !strings.Contains(out, "Read-only file system") {
			t.Errorf("write to read-only /etc/group: code %d, %q", code, out)
		}
		if out, code := exec("cat", "/etc/passwd"); code != 0 || out != "" {
			t.Errorf("masked /etc/passwd: code %d, %q; want empty", code, out)
		}
		if out, code := exec("touch", "/etc/x"); code != 0 {
			t.Errorf("touch /etc/x: code %d, %q (the rest of the rootfs must stay writable)", code, out)
		}
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}
