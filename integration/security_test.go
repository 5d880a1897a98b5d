//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

const (
	annInternal = "dev.gvisor.internal.checkpoint.path"
	annBundle   = "dev.gvisor.bundle.experimental-high-performance"
	annFlag     = "dev.gvisor.flag.debug"
)

// sandboxesDir is where the controller keeps sandbox bundles.
func sandboxesDir(d *harness.Daemon) string {
	return filepath.Join(d.State, "io.containerd.shimless.v1.runsc", "sandboxes")
}

// bundleSpec reads a sandbox's config.json, the spec runsc was given.
func bundleSpec(t *testing.T, d *harness.Daemon, id string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sandboxesDir(d), id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// runPodErr runs a pod and returns the error; a pod that runs is tracked.
func runPodErr(d *harness.Daemon, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "runsc"})
	if err != nil {
		return "", err
	}
	d.Track(resp.PodSandboxId)
	return resp.PodSandboxId, nil
}

// requireRefused checks a CRI error is InvalidArgument naming want.
func requireRefused(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("pod ran; want InvalidArgument naming %s", want)
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v (code %s), want InvalidArgument naming %s", err, status.Code(err), want)
	}
	t.Logf("refused: %v", err)
}

// onlyRunning checks the controller's state dir holds the shared rootfs
// and the given sandboxes' bundles, nothing half-created.
func onlyRunning(t *testing.T, d *harness.Daemon, ids ...string) {
	t.Helper()
	want := map[string]bool{"rootfs": true}
	for _, id := range ids {
		want[id] = true
	}
	entries, _ := os.ReadDir(sandboxesDir(d))
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("leftover in %s: %s", sandboxesDir(d), e.Name())
		}
	}
}

func podWithAnnotations(d *harness.Daemon, name, hostDir string, internal bool) *runtimeapi.PodSandboxConfig {
	pod := d.PodConfig(name)
	pod.Annotations = map[string]string{annBundle: "true", annFlag: "true"}
	if internal {
		pod.Annotations[annInternal] = hostDir
	}
	return pod
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("%s is not empty: %v", dir, entries)
	}
}

// TestRunscSecurityDefaultAnnotations: with the default config (no
// pod_annotations on the handler) a pod asking for a checkpoint into a
// host directory is refused with InvalidArgument naming the key; without
// that key it runs, and neither its bundle nor its flag annotation reaches
// runsc's config.json; a container's own dev.gvisor.* annotations are
// dropped by CRI (no container_annotations) before the runtime sees them.
// Nothing is written to the named directory.
func TestRunscSecurityDefaultAnnotations(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	hostDir := filepath.Join(d.Dir, "stolen")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := runPodErr(d, podWithAnnotations(d, "sec-default-internal", hostDir, true))
	requireRefused(t, err, annInternal)
	onlyRunning(t, d)

	pod := podWithAnnotations(d, "sec-default", hostDir, false)
	id := d.RunPod(pod, "runsc")
	spec := bundleSpec(t, d, id)
	for k := range spec.Annotations {
		if strings.HasPrefix(k, "dev.gvisor.") {
			t.Errorf("annotation %s reached the sandbox spec", k)
		}
	}
	// Container annotations: CRI itself drops those container_annotations
	// (unset) does not allow before the spec reaches the runtime.
	cfg := harness.ContainerConfig("c", "sleep", "3600")
	cfg.Annotations = map[string]string{annInternal: hostDir, annFlag: "true", "example.com/x": "y"}
	ctrID := d.StartContainer(id, pod, cfg)
	if s := containerState(t, d, ctrID).State; s != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container %s", s)
	}
	data, err := os.ReadFile(filepath.Join(d.State, "io.containerd.shimless.v1.runsc", "tasks", "k8s.io", ctrID, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ctrSpec specs.Spec
	if err := json.Unmarshal(data, &ctrSpec); err != nil {
		t.Fatal(err)
	}
	for k := range ctrSpec.Annotations {
		if strings.HasPrefix(k, "dev.gvisor.") || k == "example.com/x" {
			t.Errorf("container annotation %s reached the container spec", k)
		}
	}
	emptyDir(t, hostDir)
	checkModes(t, d, id, ctrID)
	stopAndRemove(t, d, id)
	emptyDir(t, hostDir)
	noLeaks(t, d)
}

// TestRunscSecurityAllowlistedAnnotations: with pod_annotations =
// ["dev.gvisor.*"], the internal key is still refused; the bundle and the
// flag are refused (InvalidArgument naming them) while the plugin config
// does not allow them.
func TestRunscSecurityAllowlistedAnnotations(t *testing.T) {
	d := harness.Start(t, harness.Options{RunscPodAnnotations: []string{"dev.gvisor.*"}})
	hostDir := filepath.Join(d.Dir, "stolen")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := runPodErr(d, podWithAnnotations(d, "sec-allow-internal", hostDir, true))
	requireRefused(t, err, annInternal)

	pod := d.PodConfig("sec-allow-bundle")
	pod.Annotations = map[string]string{annBundle: "true"}
	_, err = runPodErr(d, pod)
	requireRefused(t, err, annBundle)

	pod = d.PodConfig("sec-allow-flag")
	pod.Annotations = map[string]string{annFlag: "true"}
	_, err = runPodErr(d, pod)
	requireRefused(t, err, annFlag)

	onlyRunning(t, d)
	emptyDir(t, hostDir)
	noLeaks(t, d)
}

// TestRunscSecurityAllowedOverrides: when the plugin config allows the
// bundle and flag overrides (and pod_annotations lets them through), they
// reach runsc's config.json and the pod runs; internal stays refused.
func TestRunscSecurityAllowedOverrides(t *testing.T) {
	d := harness.Start(t, harness.Options{
		RunscPodAnnotations: []string{"dev.gvisor.*"},
		ShimlessConfig:      "  allowed_bundles = [\"experimental-high-performance\"]\n  allow_pod_flag_overrides = true\n",
	})
	hostDir := filepath.Join(d.Dir, "stolen")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := runPodErr(d, podWithAnnotations(d, "sec-open-internal", hostDir, true))
	requireRefused(t, err, annInternal)

	pod := podWithAnnotations(d, "sec-open", hostDir, false)
	id := d.RunPod(pod, "runsc")
	spec := bundleSpec(t, d, id)
	if spec.Annotations[annBundle] != "true" || spec.Annotations[annFlag] != "true" {
		t.Errorf("allowed annotations missing from the sandbox spec: %v", spec.Annotations)
	}
	requireState(t, d, id, runtimeapi.PodSandboxState_SANDBOX_READY, 10*time.Second)
	emptyDir(t, hostDir)
	stopAndRemove(t, d, id)
	noLeaks(t, d)
}

var hostileIDs = []string{"rootfs", "../x", "-x", ""}

// TestRunscSecurityReservedIDs: reserved and malformed ids get
// InvalidArgument from the sandbox API (the controller, through
// containerd's sandbox controller service) and the task API (a container
// of the runsc runtime), while a running pod is undisturbed and nothing
// leaks.
func TestRunscSecurityReservedIDs(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	pod := d.PodConfig("sec-bystander")
	podID := d.RunPod(pod, "runsc")
	ctrID := d.StartContainer(podID, pod, harness.ContainerConfig("c", "sleep", "3600"))

	c, err := containerd.New(d.Address, containerd.WithDefaultNamespace("k8s.io"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl := c.SandboxController("runsc")

	for _, id := range hostileIDs {
		t.Run("sandbox/"+id, func(t *testing.T) {
			err := ctrl.Create(ctx, sandbox.Sandbox{ID: id, Sandboxer: "runsc"})
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("Create(%q) = %v, want InvalidArgument", id, err)
			}
			t.Logf("Create(%q): %v", id, err)
			for name, call := range map[string]func() error{
				"Start":    func() error { _, err := ctrl.Start(ctx, id); return err },
				"Stop":     func() error { return ctrl.Stop(ctx, id) },
				"Status":   func() error { _, err := ctrl.Status(ctx, id, false); return err },
				"Shutdown": func() error { return ctrl.Shutdown(ctx, id) },
			} {
				if err := call(); !errdefs.IsInvalidArgument(err) {
					t.Errorf("%s(%q) = %v, want InvalidArgument", name, id, err)
				}
			}
		})
		t.Run("task/"+id, func(t *testing.T) {
			ctr, err := c.NewContainer(ctx, id, containerd.WithRuntime("io.containerd.runsc.v1", nil), containerd.WithNewSpec(oci.WithProcessArgs("true")))
			if err != nil {
				// containerd's own store refuses malformed ids first.
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("NewContainer(%q) = %v, want InvalidArgument", id, err)
				}
				t.Logf("NewContainer(%q): %v", id, err)
				return
			}
			defer ctr.Delete(context.WithoutCancel(ctx))
			_, err = ctr.NewTask(ctx, cio.NullIO)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("NewTask(%q) = %v, want InvalidArgument", id, err)
			}
			t.Logf("NewTask(%q): %v", id, err)
		})
	}
	// ctr, as an operator would type it.
	out, err := d.Ctr("run", "--rm", "--runtime", "io.containerd.runsc.v1", harness.Busybox, "rootfs", "true")
	if err == nil || !strings.Contains(out, "invalid argument") || !strings.Contains(out, "rootfs") {
		t.Errorf("ctr run ... rootfs: %v, output %q; want an invalid argument error naming rootfs", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	t.Logf("ctr run ... rootfs: %s", lines[len(lines)-1])
	// A valid id still runs (in its private sandbox).
	if out, err := d.Ctr("run", "--rm", "--runtime", "io.containerd.runsc.v1", harness.Busybox, "sec-ok", "echo", "hello"); err != nil || !strings.Contains(out, "hello") {
		t.Errorf("ctr run sec-ok: %v, output %q", err, out)
	}

	if s := podState(t, d, podID).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("bystander pod %s", s)
	}
	if s := containerState(t, d, ctrID).State; s != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("bystander container %s", s)
	}
	if _, err := os.Stat(filepath.Join(sandboxesDir(d), "rootfs", "shimless-pause")); err != nil {
		t.Errorf("shared pause rootfs: %v", err)
	}
	onlyRunning(t, d, podID)
	stopAndRemove(t, d, podID)
	noLeaks(t, d)
}

// checkModes checks the modes of what the controller and the runtime
// write (docs/security.md): no state is world-writable, specs and records
// are 0600, and the sandbox's control socket is not writable (connectable)
// by other users.
func checkModes(t *testing.T, d *harness.Daemon, podID, ctrID string) {
	t.Helper()
	plugin := filepath.Join(d.State, "io.containerd.shimless.v1.runsc")
	for path, want := range map[string]os.FileMode{
		plugin:                             0o711,
		filepath.Join(plugin, "sandboxes"): 0o711,
		filepath.Join(plugin, "sandboxes", podID):                                            0o711,
		filepath.Join(plugin, "sandboxes", podID, "config.json"):                             0o600,
		filepath.Join(plugin, "runsc"):                                                       0o711,
		filepath.Join(plugin, "tasks", "k8s.io", ctrID, "config.json"):                       0o600,
		filepath.Join(plugin, "tasks", "k8s.io", ctrID, "task.json"):                         0o600,
		filepath.Join(d.Root, "io.containerd.shimless.v1.runsc", "sandboxes", podID+".json"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	sock := filepath.Join(plugin, "runsc", "runsc-"+podID+".sock")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Errorf("control socket: %v", err)
		return
	}
	t.Logf("control socket %s: mode %v, owner uid %d", sock, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	if fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("control socket %s is writable by group or others: %v", sock, fi.Mode())
	}
}

// TestRunscSecurityHostileValues: negative/overflowing resources, host
// sysctls and resolv.conf injection in a PodSandboxConfig get
// InvalidArgument with nothing half-created; a container whose
// ContainerConfig has negative cpu shares (which CRI turns into a huge
// unsigned value) fails with InvalidArgument and its pod keeps running.
func TestRunscSecurityHostileValues(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	for name, mutate := range map[string]func(*runtimeapi.PodSandboxConfig){
		"cpu_period": func(p *runtimeapi.PodSandboxConfig) {
			p.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: -1}
		},
		"memory_limit_in_bytes": func(p *runtimeapi.PodSandboxConfig) {
			p.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1<<63 - 1}
		},
		"kernel.core_pattern": func(p *runtimeapi.PodSandboxConfig) {
			p.Linux.Sysctls = map[string]string{"kernel.core_pattern": "|/tmp/x"}
		},
		"dns_config": func(p *runtimeapi.PodSandboxConfig) {
			p.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.0.0.1\nnameserver 6.6.6.6"}}
		},
	} {
		pod := d.PodConfig("sec-hostile")
		mutate(pod)
		_, err := runPodErr(d, pod)
		requireRefused(t, err, name)
	}
	onlyRunning(t, d)

	pod := d.PodConfig("sec-hostile-ctr")
	podID := d.RunPod(pod, "runsc")
	cfg := harness.ContainerConfig("bad", "sleep", "3600")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: -2}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err == nil {
		d.Track(resp.ContainerId)
		_, err = d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId})
	}
	if err == nil || status.Code(err) != codes.InvalidArgument {
		t.Fatalf("container with cpu_shares -2: %v, want InvalidArgument", err)
	}
	t.Logf("container with cpu_shares -2: %v", err)
	if s := podState(t, d, podID).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod %s after the refused container", s)
	}
	good := d.StartContainer(podID, pod, harness.ContainerConfig("good", "sleep", "3600"))
	if s := containerState(t, d, good).State; s != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("good container %s", s)
	}
	if resp != nil {
		_, _ = d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: resp.ContainerId})
	}
	stopAndRemove(t, d, podID)
	noLeaks(t, d)
}

// TestRunscSecurityKubeletValuesAccepted: the validation does not refuse
// what kubelet sends. On every gVisor handler (for the shim-style one the
// pause container spec is CRI's and goes through the runtime's check), a
// pod with a cgroup parent, kubelet-like resources, namespaced sysctls and
// a cluster DNS config runs; a container with limits starts and its
// resources can be updated.
func TestRunscSecurityKubeletValuesAccepted(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("sec-kubelet-" + handler)
		pod.Linux.CgroupParent = d.CgroupParent("sec-" + handler)
		pod.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 256 << 20}
		pod.Linux.Sysctls = map[string]string{"kernel.shm_rmid_forced": "1", "net.ipv4.ip_local_port_range": "1024 65000"}
		pod.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}}
		id := d.RunPod(pod, handler)
		cfg := harness.ContainerConfig("c", "sleep", "3600")
		cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 204, MemoryLimitInBytes: 64 << 20}
		ctrID := d.StartContainer(id, pod, cfg)
		if s := containerState(t, d, ctrID).State; s != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("container %s", s)
		}
		if _, err := d.Runtime.UpdateContainerResources(context.Background(), &runtimeapi.UpdateContainerResourcesRequest{
			ContainerId: ctrID,
			Linux:       &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuShares: 256},
		}); err != nil {
			t.Errorf("UpdateContainerResources: %v", err)
		}
		stopAndRemove(t, d, id)
	})
	noLeaks(t, d)
}
