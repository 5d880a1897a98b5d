package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Busybox is the offline busybox image (see integration/testimage).
const Busybox = "shimless.test/busybox:latest"

// PodConfig returns a minimal pod config named name, logging under LogDir.
func (d *Daemon) PodConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      name,
			Uid:       fmt.Sprintf("uid-%s-%d", name, time.Now().UnixNano()),
			Namespace: "shimless-test",
		},
		Hostname:     name,
		LogDirectory: filepath.Join(d.LogDir, name),
		Labels:       map[string]string{"test": "shimless"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

// RunPod runs a pod with the given runtime handler and tracks its id.
func (d *Daemon) RunPod(cfg *runtimeapi.PodSandboxConfig, handler string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		d.t.Fatalf("RunPodSandbox(%s, handler %q): %v", cfg.Metadata.Name, handler, err)
	}
	d.Track(resp.PodSandboxId)
	return resp.PodSandboxId
}

// ContainerConfig returns a busybox container running args.
func ContainerConfig(name string, args ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: Busybox},
		Command:  args,
		LogPath:  name + ".log",
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}

// StartContainer creates and starts a container in a pod; it is tracked.
func (d *Daemon) StartContainer(podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		d.t.Fatalf("CreateContainer(%s): %v", cfg.Metadata.Name, err)
	}
	d.Track(resp.ContainerId)
	if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		d.t.Fatalf("StartContainer(%s): %v", cfg.Metadata.Name, err)
	}
	return resp.ContainerId
}

// WaitExited waits until the container has exited and returns its status.
func (d *Daemon) WaitExited(id string, timeout time.Duration) *runtimeapi.ContainerStatus {
	d.t.Helper()
	var st *runtimeapi.ContainerStatus
	d.Eventually(timeout, func() error {
		resp, err := d.Runtime.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			return err
		}
		st = resp.Status
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			return fmt.Errorf("container %s is %s", id, st.State)
		}
		return nil
	})
	return st
}

// ContainerLog reads a container's CRI log file and returns the message
// part of each line ("<time> <stream> <tag> <msg>").
func (d *Daemon) ContainerLog(pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(pod.LogDirectory, cfg.LogPath))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		parts := strings.SplitN(line, " ", 4)
		if len(parts) == 4 {
			out = append(out, parts[1]+" "+parts[3])
		}
	}
	return out, nil
}

// CgroupParent returns a cgroupfs pod cgroup parent unique to this daemon
// (as kubelet would pass) and removes it in every hierarchy at cleanup.
func (d *Daemon) CgroupParent(name string) string {
	parent := "/shimless-test/" + name + "-" + filepath.Base(d.Dir)
	d.t.Cleanup(func() {
		entries, _ := os.ReadDir("/sys/fs/cgroup")
		for _, e := range entries {
			os.Remove(filepath.Join("/sys/fs/cgroup", e.Name(), parent))
			// The shared root goes with the last parent under it.
			os.Remove(filepath.Join("/sys/fs/cgroup", e.Name(), filepath.Dir(parent)))
		}
	})
	return parent
}

// Crictl runs bin/crictl against this daemon with stdin as given.
func (d *Daemon) Crictl(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := filepath.Join(d.Dir, "crictl.yaml")
	if _, err := os.Stat(cfg); err != nil {
		body := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", d.Address, d.Address)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(d.BinDir, "crictl"), append([]string{"--config", cfg}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// UserNamespace makes pod (and the containers given) user-namespaced, as
// kubelet does for hostUsers: false: root in the pod maps to hostID and the
// 65535 ids after it.
func UserNamespace(pod *runtimeapi.PodSandboxConfig, hostID uint32, containers ...*runtimeapi.ContainerConfig) {
	mapping := []*runtimeapi.IDMapping{{HostId: hostID, ContainerId: 0, Length: 65536}}
	ns := &runtimeapi.NamespaceOption{
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping},
	}
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns}
	for _, c := range containers {
		c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns}
	}
}
