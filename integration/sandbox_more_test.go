//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

func stopAndRemove(t *testing.T, d *harness.Daemon, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("StopPodSandbox(%s): %v", id, err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("RemovePodSandbox(%s): %v", id, err)
	}
}

func requireState(t *testing.T, d *harness.Daemon, id string, want runtimeapi.PodSandboxState, within time.Duration) {
	t.Helper()
	d.Eventually(within, func() error {
		if s := podState(t, d, id).Status.State; s != want {
			return fmt.Errorf("pod %s is %s, want %s", id, s, want)
		}
		return nil
	})
}

func noLeaks(t *testing.T, d *harness.Daemon) {
	t.Helper()
	if leaks := d.Leaks(); len(leaks) > 0 {
		t.Errorf("still on the host:\n%s", strings.Join(leaks, "\n"))
	}
}

// TestRunscHostNetworkPod: a host-network pod runs with runsc's host
// network and reports no pod IP.
func TestRunscHostNetworkPod(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	pod := d.PodConfig("runsc-hostnet")
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
	}
	// A host-network pod has the node's hostname (kubelet sends none;
	// runc refuses one): a custom one is InvalidArgument.
	if _, err := d.Runtime.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: pod, RuntimeHandler: "runsc"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("host-network pod with its own hostname: %v, want InvalidArgument", err)
	}
	pod.Hostname = ""
	id := d.RunPod(pod, "runsc")
	st := podState(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("state %s", st.Status.State)
	}
	if st.Info["hostNetwork"] != "true" || !strings.Contains(st.Info["runscFlags"], `"network":"host"`) {
		t.Errorf("host network not applied: hostNetwork=%q flags=%q", st.Info["hostNetwork"], st.Info["runscFlags"])
	}
	stopAndRemove(t, d, id)
	noLeaks(t, d)
}

// TestRunscPodCgroupParentAndResources: the sandbox lives under the pod's
// cgroup parent with the pod's limits; PodSandboxStats shows real usage.
func TestRunscPodCgroupParentAndResources(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	parent := d.CgroupParent("limits")
	pod := d.PodConfig("runsc-cgroup")
	pod.Linux.CgroupParent = parent
	pod.Linux.Resources = &runtimeapi.LinuxContainerResources{
		MemoryLimitInBytes: 256 << 20,
		CpuPeriod:          100000,
		CpuQuota:           50000,
		CpuShares:          512,
	}
	id := d.RunPod(pod, "runsc")
	d.Track(filepath.Base(parent))
	// runsc's cgroup-parent annotation makes the pod cgroup the sandbox
	// cgroup: the pod's limits sit there; <parent>/<id> is an empty child.
	cg := filepath.Join(parent, id)
	read := func(ctrl, file string) string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, parent, file))
		if err != nil {
			t.Errorf("read %s: %v", file, err)
		}
		return strings.TrimSpace(string(b))
	}
	if got := read("memory", "memory.limit_in_bytes"); got != strconv.Itoa(256<<20) {
		t.Errorf("memory limit %s, want %d", got, 256<<20)
	}
	if got := read("cpu", "cpu.cfs_quota_us"); got != "50000" {
		t.Errorf("cpu quota %s, want 50000", got)
	}
	if got := read("cpu", "cpu.shares"); got != "512" {
		t.Errorf("cpu shares %s, want 512", got)
	}
	stats, err := d.Runtime.PodSandboxStats(context.Background(), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil {
		t.Fatalf("PodSandboxStats: %v", err)
	}
	lin := stats.GetStats().GetLinux()
	if lin.GetMemory().GetWorkingSetBytes().GetValue() == 0 && lin.GetMemory().GetUsageBytes().GetValue() == 0 {
		t.Errorf("pod memory stats are zero: %v", lin.GetMemory())
	}
	if lin.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 {
		t.Errorf("pod cpu stats are zero: %v", lin.GetCpu())
	}
	stopAndRemove(t, d, id)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", cg)); err == nil {
		t.Errorf("sandbox cgroup %s left behind", cg)
	}
	noLeaks(t, d)
}

// TestRunscStopHungSandbox: a SIGSTOPped sandbox (it ignores everything)
// is torn down within stop timeout + 5s and leaves nothing.
func TestRunscStopHungSandbox(t *testing.T) {
	d := harness.Start(t, harness.Options{ShimlessConfig: `  stop_timeout = "3s"`})
	pod := d.PodConfig("runsc-hung")
	id := d.RunPod(pod, "runsc")
	pid := podPid(t, d, id)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if took := time.Since(begin); took > 8*time.Second {
		t.Errorf("stop took %v, want <= stop timeout (3s) + 5s", took)
	} else {
		t.Logf("hung sandbox stopped in %v", took)
	}
	requireState(t, d, id, runtimeapi.PodSandboxState_SANDBOX_NOTREADY, 5*time.Second)
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	noLeaks(t, d)
}

func podPid(t *testing.T, d *harness.Daemon, id string) int {
	t.Helper()
	st := podState(t, d, id)
	var pid int
	if _, err := fmt.Sscanf(st.Info["info"][strings.Index(st.Info["info"], `"pid":`)+6:], "%d", &pid); err != nil || pid <= 0 {
		t.Fatalf("no pid in %s", st.Info["info"])
	}
	return pid
}

// TestRunscRecoveryAfterKill9: with 3 pods running, containerd is killed
// with SIGKILL; one sandbox dies while it is down. After restart the two
// live pods are READY (and can still be stopped: Wait was re-armed) and
// the dead one is NOTREADY.
func TestRunscRecoveryAfterKill9(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	var ids []string
	for i := range 3 {
		ids = append(ids, d.RunPod(d.PodConfig(fmt.Sprintf("runsc-recover-%d", i)), "runsc"))
	}
	victim := podPid(t, d, ids[2])
	d.Kill9()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	d.Restart()
	for _, id := range ids[:2] {
		requireState(t, d, id, runtimeapi.PodSandboxState_SANDBOX_READY, 5*time.Second)
	}
	requireState(t, d, ids[2], runtimeapi.PodSandboxState_SANDBOX_NOTREADY, 10*time.Second)
	if st := podState(t, d, ids[2]); st.Info["exitStatus"] != "255" {
		t.Errorf("dead pod exit status %q, want 255 (unknown)", st.Info["exitStatus"])
	}
	// Wait was re-armed: stopping a recovered pod makes it NOTREADY.
	ctx := context.Background()
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: ids[0]}); err != nil {
		t.Fatal(err)
	}
	requireState(t, d, ids[0], runtimeapi.PodSandboxState_SANDBOX_NOTREADY, 5*time.Second)
	for _, id := range ids {
		stopAndRemove(t, d, id)
	}
	noLeaks(t, d)
}

// TestRunscParallelPods: 20 pods created and deleted in parallel.
func TestRunscParallelPods(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	begin := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			pod := d.PodConfig(fmt.Sprintf("runsc-par-%d", i))
			resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod, RuntimeHandler: "runsc"})
			if err != nil {
				errs <- fmt.Errorf("run %d: %w", i, err)
				return
			}
			d.Track(resp.PodSandboxId)
			st, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: resp.PodSandboxId})
			if err != nil || st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
				errs <- fmt.Errorf("pod %d not ready: %v %v", i, st, err)
			}
			if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
				errs <- fmt.Errorf("stop %d: %w", i, err)
			}
			if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
				errs <- fmt.Errorf("remove %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d pods run+stop+remove in parallel in %v", n, time.Since(begin))
	resp, err := d.Runtime.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(resp.Items) != 0 {
		t.Errorf("pods left: %v %v", resp, err)
	}
	noLeaks(t, d)
}

// TestRunscMissing: with no usable runsc the plugins skip themselves with
// a message naming the path, and runc pods keep working.
func TestRunscMissing(t *testing.T) {
	missing := "/nonexistent/shimless/runsc"
	d := harness.Start(t, harness.Options{RunscPath: missing})
	out, err := d.Ctr("plugins", "ls")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "io.containerd.sandbox.controller.v1") || strings.Contains(lineOf(out, "io.containerd.sandbox.controller.v1    runsc"), " ok") {
		t.Errorf("runsc controller not skipped:\n%s", out)
	}
	if !strings.Contains(d.Log(), missing) {
		t.Errorf("containerd log does not name %s", missing)
	}
	// runc still works.
	pod := d.PodConfig("runc-without-runsc")
	id := d.RunPod(pod, "runc")
	c := harness.ContainerConfig("hi", "echo", "still here")
	cid := d.StartContainer(id, pod, c)
	d.WaitExited(cid, 30*time.Second)
	stopAndRemove(t, d, id)
	// And a runsc pod fails with a clear error instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: d.PodConfig("runsc-unavailable"), RuntimeHandler: "runsc"})
	if err == nil {
		t.Errorf("runsc pod ran without runsc")
	} else {
		t.Logf("runsc pod without runsc: %v", err)
	}
	noLeaks(t, d)
}

// TestBadPluginConfig: an invalid value is reported with its key, and CRI
// keeps working for runc.
func TestBadPluginConfig(t *testing.T) {
	d := harness.Start(t, harness.Options{ShimlessConfig: `  stop_timeout = "soon"`, SkipImages: true})
	out, err := d.Ctr("plugins", "ls", "-d", "id==runsc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "stop_timeout") && !strings.Contains(d.Log(), "stop_timeout") {
		t.Errorf("error does not name stop_timeout:\n%s", out)
	}
	if !strings.Contains(d.Log(), `stop_timeout: \"soon\" is not a duration`) && !strings.Contains(d.Log(), `stop_timeout: "soon" is not a duration`) {
		t.Errorf("containerd log lacks the config error")
	}
}

func lineOf(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestRunscStartFailure: when runsc refuses to start a sandbox, the error
// carries runsc's own text and where to look, and nothing is left.
func TestRunscStartFailure(t *testing.T) {
	d := harness.Start(t, harness.Options{ShimlessConfig: "  [plugins.'io.containerd.shimless.v1.runsc'.runsc_config]\n    platform = \"no-such-platform\"\n"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: d.PodConfig("runsc-fails"), RuntimeHandler: "runsc"})
	if err == nil {
		t.Fatal("pod started with an unknown runsc platform")
	}
	for _, want := range []string{"no-such-platform", "runsc output in", "debug_log_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(d.State, "io.containerd.shimless.v1.runsc", "sandboxes"))
	for _, e := range entries {
		if e.Name() != "rootfs" {
			t.Errorf("sandbox state left behind: %s", e.Name())
		}
	}
	records, _ := os.ReadDir(filepath.Join(d.Root, "io.containerd.shimless.v1.runsc", "sandboxes"))
	if len(records) != 0 {
		t.Errorf("sandbox records left behind: %v", records)
	}
	noLeaks(t, d)
}

// TestRunscUserNamespacePod: a pod with its own user namespace (mode POD,
// as kubelet sends for hostUsers: false) runs: runsc gets the mappings, not
// a namespace path it cannot join.
func TestRunscUserNamespacePod(t *testing.T) {
	d := harness.Start(t, harness.Options{ShimlessConfig: os.Getenv("SHIMLESS_TEST_PLUGIN_CONFIG")})
	pod := d.PodConfig("runsc-userns")
	harness.UserNamespace(pod, 65536*5)
	id := d.RunPod(pod, "runsc")
	st := podState(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("state %s", st.Status.State)
	}
	if !strings.Contains(st.Info["info"], `"uidMappings"`) {
		t.Errorf("sandbox spec has no uid mappings: %s", st.Info["info"])
	}
	stopAndRemove(t, d, id)
	noLeaks(t, d)
}

func asExitError(err error, target **exec.ExitError) bool {
	return errors.As(err, target)
}

// forEachHandler runs f as a subtest for each way operators configure a
// gVisor handler (harness.RunscHandlers).
func forEachHandler(t *testing.T, f func(t *testing.T, handler string)) {
	for _, h := range harness.RunscHandlers {
		t.Run(h, func(t *testing.T) { f(t, h) })
	}
}
