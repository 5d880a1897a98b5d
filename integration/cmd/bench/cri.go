package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

// phases of one pod start, as a kubelet sees them.
type phases struct {
	run, create, start, firstLog time.Duration
}

func (p phases) total() time.Duration { return p.run + p.create + p.start + p.firstLog }

// pod is a started pod of any target.
type pod struct {
	id, cid string
}

// target is one way to run a pod: a CRI handler of a containerd, or raw
// runsc.
type target interface {
	name() string
	startPod(ctx context.Context, name string) (*pod, phases, error)
	exec(ctx context.Context, p *pod) error
	teardown(ctx context.Context, p *pod) error
	// containerdPid is the containerd serving the target (0: none).
	containerdPid() int
}

// readyLine is what every bench container prints first; then it idles.
const readyLine = "ready"

var containerArgs = []string{"sh", "-c", "echo " + readyLine + "; exec sleep 3600"}

// criTarget runs pods through CRI with one runtime handler.
type criTarget struct {
	label, handler string
	d              *harness.Daemon
}

func (c *criTarget) name() string       { return c.label }
func (c *criTarget) containerdPid() int { return c.d.Pid() }

func (c *criTarget) startPod(ctx context.Context, name string) (*pod, phases, error) {
	var ph phases
	cfg := c.d.PodConfig(name)
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		return nil, ph, err
	}
	t0 := time.Now()
	run, err := c.d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: c.handler})
	if err != nil {
		return nil, ph, fmt.Errorf("RunPodSandbox: %w", err)
	}
	c.d.Track(run.PodSandboxId)
	p := &pod{id: run.PodSandboxId}
	t1 := time.Now()
	ccfg := harness.ContainerConfig("c", containerArgs...)
	created, err := c.d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: ccfg, SandboxConfig: cfg})
	if err != nil {
		return p, ph, fmt.Errorf("CreateContainer: %w", err)
	}
	c.d.Track(created.ContainerId)
	p.cid = created.ContainerId
	t2 := time.Now()
	if _, err := c.d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.cid}); err != nil {
		return p, ph, fmt.Errorf("StartContainer: %w", err)
	}
	t3 := time.Now()
	if err := waitLine(ctx, filepath.Join(cfg.LogDirectory, ccfg.LogPath)); err != nil {
		return p, ph, err
	}
	t4 := time.Now()
	ph = phases{run: t1.Sub(t0), create: t2.Sub(t1), start: t3.Sub(t2), firstLog: t4.Sub(t3)}
	return p, ph, nil
}

func (c *criTarget) exec(ctx context.Context, p *pod) error {
	resp, err := c.d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: p.cid, Cmd: []string{"true"}, Timeout: 30})
	if err != nil {
		return err
	}
	if resp.ExitCode != 0 {
		return fmt.Errorf("exec true: exit %d: %s", resp.ExitCode, resp.Stderr)
	}
	return nil
}

func (c *criTarget) teardown(ctx context.Context, p *pod) error {
	if _, err := c.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("StopPodSandbox: %w", err)
	}
	if _, err := c.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("RemovePodSandbox: %w", err)
	}
	return nil
}

// waitLine waits until a file (a CRI log or a raw runsc container's
// stdout) holds readyLine. It polls every millisecond: the figure it ends
// is the first-log-line phase.
func waitLine(ctx context.Context, path string) error {
	for {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), readyLine) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("first log line in %s: %w", path, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// allReady polls CRI until every pod in pods is READY and its container
// RUNNING (after a containerd restart).
func allReady(ctx context.Context, d *harness.Daemon, pods []*pod) error {
	for {
		err := readyOnce(ctx, d, pods)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func readyOnce(ctx context.Context, d *harness.Daemon, pods []*pod) error {
	ps, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	cs, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return err
	}
	podState := map[string]runtimeapi.PodSandboxState{}
	for _, p := range ps.Items {
		podState[p.Id] = p.State
	}
	ctrState := map[string]runtimeapi.ContainerState{}
	for _, c := range cs.Containers {
		ctrState[c.Id] = c.State
	}
	for _, p := range pods {
		if st := podState[p.id]; st != runtimeapi.PodSandboxState_SANDBOX_READY {
			return fmt.Errorf("pod %s is %s", p.id, st)
		}
		if st := ctrState[p.cid]; st != runtimeapi.ContainerState_CONTAINER_RUNNING {
			return fmt.Errorf("container %s is %s", p.cid, st)
		}
	}
	return nil
}
