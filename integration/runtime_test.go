//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

func containerState(t *testing.T, d *harness.Daemon, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	resp, err := d.Runtime.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus(%s): %v", id, err)
	}
	return resp.Status
}

// TestRunscMultiContainerPod: two containers and the sandbox, each with its
// own state: one exits 3, the other keeps running, the pod stays READY;
// each container's log is its own.
func TestRunscMultiContainerPod(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("runsc-multi-" + handler)
		podID := d.RunPod(pod, handler)
		quitter := harness.ContainerConfig("quitter", "sh", "-c", "echo quitting; exit 3")
		runner := harness.ContainerConfig("runner", "sh", "-c", "echo running; exec sleep 3600")
		qID := d.StartContainer(podID, pod, quitter)
		rID := d.StartContainer(podID, pod, runner)

		st := d.WaitExited(qID, 30*time.Second)
		if st.ExitCode != 3 {
			t.Errorf("quitter exit code %d, want 3", st.ExitCode)
		}
		if s := containerState(t, d, rID); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("runner is %s, want RUNNING", s.State)
		}
		if s := podState(t, d, podID).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod is %s, want READY", s)
		}
		// CRI deletes the quitter's task once it exited: runsc runs the
		// sandbox and the runner.
		// (Our controller's verbose field; CRI's podsandbox controller, which
		// runs shim-style pods, has none.)
		if n := podState(t, d, podID).Info["containerCount"]; handler != "runsc-shim-style" && n != "2" {
			t.Errorf("verbose containerCount %q, want 2 (the sandbox and the running container)", n)
		}
		d.Eventually(10*time.Second, func() error {
			for cfg, want := range map[*runtimeapi.ContainerConfig]string{quitter: "stdout quitting", runner: "stdout running"} {
				lines, err := d.ContainerLog(pod, cfg)
				if err != nil {
					return err
				}
				if len(lines) != 1 || lines[0] != want {
					return fmt.Errorf("%s log %q, want exactly %q", cfg.Metadata.Name, lines, want)
				}
			}
			return nil
		})

		// Stopping the running container reports SIGKILL's 137 after the grace
		// period is ignored by sleep... sleep dies on SIGTERM: exit 143.
		ctx := context.Background()
		if _, err := d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: rID, Timeout: 2}); err != nil {
			t.Fatal(err)
		}
		if code := d.WaitExited(rID, 10*time.Second).ExitCode; code != 143 && code != 137 {
			t.Errorf("runner exit code %d after stop, want 143 or 137", code)
		}
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// TestRunscExecAndStats: ExecSync returns the process's output and exit
// code; container stats are not zero.
func TestRunscExecAndStats(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("runsc-exec-" + handler)
		podID := d.RunPod(pod, handler)
		id := d.StartContainer(podID, pod, harness.ContainerConfig("busy", "sh", "-c", "i=0; while true; do i=$((i+1)); sleep 0.1; done"))
		ctx := context.Background()
		resp, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 5"}, Timeout: 30})
		if err != nil {
			t.Fatalf("ExecSync: %v", err)
		}
		if resp.ExitCode != 5 || strings.TrimSpace(string(resp.Stdout)) != "out" || strings.TrimSpace(string(resp.Stderr)) != "err" {
			t.Errorf("ExecSync = code %d, stdout %q, stderr %q; want 5, out, err", resp.ExitCode, resp.Stdout, resp.Stderr)
		}
		// The exec's exit is its own: the container still runs.
		if s := containerState(t, d, id); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container is %s after exec, want RUNNING", s.State)
		}
		d.Eventually(15*time.Second, func() error {
			st, err := d.Runtime.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
			if err != nil {
				return err
			}
			if st.Stats.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 || st.Stats.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
				return fmt.Errorf("container stats are zero: cpu %v memory %v", st.Stats.GetCpu(), st.Stats.GetMemory())
			}
			return nil
		})
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// TestCtrRunRunsc: `ctr run --rm --runtime io.containerd.runsc.v1` runs a
// standalone container in its own sandbox, prints its output and returns
// its exit code.
func TestCtrRunRunsc(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	out, err := d.Ctr("run", "--rm", "--runtime", "io.containerd.runsc.v1", harness.Busybox, "ctr-runsc-"+filepath.Base(d.Dir),
		"sh", "-c", "echo hello from ctr; exit 4")
	if !strings.Contains(out, "hello from ctr") {
		t.Errorf("output %q lacks the container's line", out)
	}
	var ee *exec.ExitError
	if err == nil || !asExitError(err, &ee) || ee.ExitCode() != 4 {
		t.Errorf("ctr run returned %v, want exit code 4", err)
	}
	noLeaks(t, d)
}

// TestRunscContainerSurvivesKill9: containerd is killed with SIGKILL while
// a container writes a counter to stdout; after restart the container
// still runs, no line is lost, and an exit during the downtime is
// reported.
func TestRunscContainerSurvivesKill9(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	pod := d.PodConfig("runsc-k9")
	podID := d.RunPod(pod, "runsc")
	counter := harness.ContainerConfig("counter", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done")
	shortLived := harness.ContainerConfig("short", "sh", "-c", "sleep 2; exit 6")
	cID := d.StartContainer(podID, pod, counter)
	sID := d.StartContainer(podID, pod, shortLived)
	time.Sleep(time.Second)
	d.Kill9()
	time.Sleep(3 * time.Second) // "short" exits while containerd is down
	d.Restart()
	if s := containerState(t, d, cID); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("counter is %s after restart, want RUNNING", s.State)
	}
	if s := podState(t, d, podID).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod is %s after restart", s)
	}
	if code := d.WaitExited(sID, 10*time.Second).ExitCode; code != 6 {
		t.Errorf("container that exited during downtime reports %d, want 6", code)
	}
	time.Sleep(time.Second)
	ctx := context.Background()
	if _, err := d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cID, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	d.WaitExited(cID, 10*time.Second)
	var lines []string
	d.Eventually(10*time.Second, func() error {
		var err error
		lines, err = d.ContainerLog(pod, counter)
		return err
	})
	var nums []int
	for _, l := range lines {
		n, err := strconv.Atoi(strings.TrimPrefix(l, "stdout "))
		if err != nil {
			t.Fatalf("bad log line %q", l)
		}
		nums = append(nums, n)
	}
	if len(nums) < 40 {
		t.Fatalf("only %d lines logged", len(nums))
	}
	for i, n := range nums {
		if n != i+1 {
			t.Fatalf("log lost or reordered lines around %d: %v", i+1, nums[max(0, i-3):min(len(nums), i+3)])
		}
	}
	if !slices.IsSorted(nums) {
		t.Errorf("log out of order")
	}
	t.Logf("%d counter lines, none lost across kill -9", len(nums))
	stopAndRemove(t, d, podID)
	noLeaks(t, d)
}

// TestRunscUserNamespaceContainerLogs: a hostUsers:false pod on the runsc
// handler starts a container and its logs work. CRI hands runc's task
// option type (IoUid/IoGid) for such pods to every runtime; the router
// gives runsc the owner as data instead.
func TestRunscUserNamespaceContainerLogs(t *testing.T) {
	d := harness.Start(t, harness.Options{ShimlessConfig: os.Getenv("SHIMLESS_TEST_PLUGIN_CONFIG")})
	pod := d.PodConfig("runsc-userns-logs")
	c := harness.ContainerConfig("userns", "sh", "-c", "echo uid=$(id -u)")
	harness.UserNamespace(pod, 65536*6, c)
	podID := d.RunPod(pod, "runsc")
	id := d.StartContainer(podID, pod, c)
	if code := d.WaitExited(id, 30*time.Second).ExitCode; code != 0 {
		t.Errorf("exit code %d", code)
	}
	d.Eventually(10*time.Second, func() error {
		lines, err := d.ContainerLog(pod, c)
		if err != nil {
			return err
		}
		if !slices.Contains(lines, "stdout uid=0") {
			return fmt.Errorf("log %q lacks uid=0", lines)
		}
		return nil
	})
	stopAndRemove(t, d, podID)
	noLeaks(t, d)
}

// TestRunscFailedStartDoesNotBlockPodStop: a container whose start fails
// (its binary does not exist) never blocks stopping and removing its pod.
func TestRunscFailedStartDoesNotBlockPodStop(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	pod := d.PodConfig("runsc-badstart")
	podID := d.RunPod(pod, "runsc")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := harness.ContainerConfig("missing", "/no/such/binary")
	resp, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: c, SandboxConfig: pod})
	if err != nil {
		t.Fatal(err)
	}
	d.Track(resp.ContainerId)
	if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err == nil {
		t.Fatal("a container with a missing binary started")
	} else if !strings.Contains(err.Error(), "/no/such/binary") && !strings.Contains(err.Error(), "debug") {
		t.Errorf("start error says nothing useful: %v", err)
	}
	begin := time.Now()
	stopAndRemove(t, d, podID)
	t.Logf("pod with a failed container stopped and removed in %v", time.Since(begin))
	noLeaks(t, d)
}

// TestShimStyleHandler: a handler written for gVisor's shim
// (runtime_type io.containerd.runsc.v1, default podsandbox sandboxer,
// options with ConfigPath to a runsc.toml) works unchanged, in-process: the
// pause container becomes the sandbox root, the pod's containers join it,
// each reports its own exit code, and no shim process exists.
func TestShimStyleHandler(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	pod := d.PodConfig("shim-style")
	podID := d.RunPod(pod, "runsc-shim-style")
	c1 := harness.ContainerConfig("one", "sh", "-c", "echo kernel $(uname -r); exit 2")
	c2 := harness.ContainerConfig("two", "sleep", "3600")
	id1 := d.StartContainer(podID, pod, c1)
	id2 := d.StartContainer(podID, pod, c2)
	if code := d.WaitExited(id1, 30*time.Second).ExitCode; code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if s := containerState(t, d, id2); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("second container is %s", s.State)
	}
	if s := podState(t, d, podID).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod is %s", s)
	}
	d.Eventually(10*time.Second, func() error {
		lines, err := d.ContainerLog(pod, c1)
		if err != nil {
			return err
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "gvisor") {
			return fmt.Errorf("log %q: not from a gVisor kernel", lines)
		}
		return nil
	})
	if out, _ := exec.Command("pgrep", "-f", "containerd-shim").Output(); strings.Contains(string(out), "\n") {
		for _, p := range strings.Fields(string(out)) {
			cmdline, _ := os.ReadFile("/proc/" + p + "/cmdline")
			if strings.Contains(string(cmdline), d.Dir) && strings.Contains(string(cmdline), "runsc") {
				t.Errorf("a runsc shim process runs: %s", cmdline)
			}
		}
	}
	stopAndRemove(t, d, podID)
	noLeaks(t, d)
}

// TestRunscPauseResumeUpdate: pause/resume through ctr and a resource
// update through CRI.
func TestRunscPauseResumeUpdate(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("runsc-pause-" + handler)
		podID := d.RunPod(pod, handler)
		id := d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "3600"))
		taskStatus := func() string {
			out, err := d.Ctr("tasks", "ls")
			if err != nil {
				t.Fatal(err)
			}
			return lineOf(out, id)
		}
		if _, err := d.Ctr("tasks", "pause", id); err != nil {
			t.Fatal(err)
		}
		if l := taskStatus(); !strings.Contains(l, "PAUSED") {
			t.Errorf("after pause: %q", l)
		}
		if _, err := d.Ctr("tasks", "resume", id); err != nil {
			t.Fatal(err)
		}
		if l := taskStatus(); !strings.Contains(l, "RUNNING") {
			t.Errorf("after resume: %q", l)
		}
		_, err := d.Runtime.UpdateContainerResources(context.Background(), &runtimeapi.UpdateContainerResourcesRequest{
			ContainerId: id,
			Linux:       &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuShares: 256},
		})
		if err != nil {
			t.Errorf("UpdateContainerResources: %v", err)
		}
		// SIGKILL to every process of the container: exit code 137.
		if _, err := d.Ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id); err != nil {
			t.Fatal(err)
		}
		if code := d.WaitExited(id, 10*time.Second).ExitCode; code != 137 {
			t.Errorf("exit code %d after SIGKILL, want 137", code)
		}
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// TestRunscOOMKilled: a container that allocates past the pod's memory
// limit is reported OOMKilled with exit code 137. Under runsc the host OOM
// killer can only kill the sandbox (the sentry), so the pod's sandbox exits
// too, as it would when a runc pod's pause process is OOM-killed.
func TestRunscOOMKilled(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		parent := d.CgroupParent("oom-" + handler)
		// The pod cgroup's limit, as kubelet sets it (CRI's podsandbox
		// controller, which runs shim-style pods, does not).
		limitPodCgroup(t, parent, 96<<20)
		pod := d.PodConfig("runsc-oom-" + handler)
		pod.Linux.CgroupParent = parent
		pod.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20}
		podID := d.RunPod(pod, handler)
		c := harness.ContainerConfig("hog", "sh", "-c", "echo start; x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived")
		id := d.StartContainer(podID, pod, c)
		requireOOMKilled(t, d, id)
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// limitPodCgroup makes a cgroupfs pod cgroup with a memory limit.
func limitPodCgroup(t *testing.T, parent string, limit int64) {
	t.Helper()
	dir, file := filepath.Join("/sys/fs/cgroup/memory", parent), "memory.limit_in_bytes"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		dir, file = filepath.Join("/sys/fs/cgroup", parent), "memory.max"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunscTTYContainer: a TTY container runs on a terminal and its output
// reaches the CRI log.
func TestRunscTTYContainer(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("runsc-tty-" + handler)
		podID := d.RunPod(pod, handler)
		c := harness.ContainerConfig("tty", "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; echo done")
		c.Tty, c.Stdin = true, true
		id := d.StartContainer(podID, pod, c)
		if code := d.WaitExited(id, 30*time.Second).ExitCode; code != 0 {
			t.Errorf("exit code %d", code)
		}
		d.Eventually(10*time.Second, func() error {
			lines, err := d.ContainerLog(pod, c)
			if err != nil {
				return err
			}
			all := strings.Join(lines, "\n")
			for _, want := range []string{"stdio-is-a-tty", "done"} {
				if !strings.Contains(all, want) {
					return fmt.Errorf("log %q lacks %q", lines, want)
				}
			}
			return nil
		})
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// TestRunscTTYExecResize: `ctr tasks exec -t` into a runsc container gets a
// terminal of the caller's size (ResizePty) and its output; `script` gives
// ctr a terminal of 33x77.
func TestRunscTTYExecResize(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("runsc-tty-exec-" + handler)
		podID := d.RunPod(pod, handler)
		id := d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "3600"))
		ctr := fmt.Sprintf("%s --address %s -n k8s.io tasks exec -t --exec-id tty1 %s sh -c 'sleep 0.5; stty size; [ -t 0 ] && echo exec-tty'",
			filepath.Join(d.BinDir, "ctr"), d.Address, id)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "script", "-qec", "stty rows 33 cols 77; "+ctr, "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("ctr exec -t: %v: %s", err, out)
		}
		for _, want := range []string{"33 77", "exec-tty"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("exec output %q lacks %q", out, want)
			}
		}
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// TestRunscTTYSurvivesKill9: a TTY container keeps its terminal across
// kill -9 of containerd (the pty master is parked in the sandbox and taken
// back after restart): it keeps running and no output line is lost.
func TestRunscTTYSurvivesKill9(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	pod := d.PodConfig("runsc-tty-k9")
	podID := d.RunPod(pod, "runsc")
	c := harness.ContainerConfig("ttycounter", "sh", "-c", "i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo $i; sleep 0.05; done; sleep 3600")
	c.Tty, c.Stdin = true, true
	id := d.StartContainer(podID, pod, c)
	time.Sleep(time.Second)
	d.Kill9()
	time.Sleep(2 * time.Second)
	d.Restart()
	if s := containerState(t, d, id); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("TTY container is %s after restart", s.State)
	}
	d.Eventually(20*time.Second, func() error {
		lines, err := d.ContainerLog(pod, c)
		if err != nil {
			return err
		}
		var nums []int
		for _, l := range lines {
			if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(l, "stdout "))); err == nil {
				nums = append(nums, n)
			}
		}
		if len(nums) != 100 {
			return fmt.Errorf("%d of 100 lines logged", len(nums))
		}
		for i, n := range nums {
			if n != i+1 {
				return fmt.Errorf("line %d is %d", i+1, n)
			}
		}
		return nil
	})
	stopAndRemove(t, d, podID)
	noLeaks(t, d)
}

// TestRunscStreamingExecAndAttach: crictl exec (streamed through the CRI
// streaming server) returns output and exit code; crictl attach feeds
// stdin to a container and reads its output; crictl exec -it gets a TTY.
func TestRunscStreamingExecAndAttach(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		if _, err := os.Stat(filepath.Join(d.BinDir, "crictl")); err != nil {
			t.Fatalf("bin/crictl missing (make bin/crictl): %v", err)
		}
		pod := d.PodConfig("runsc-stream-" + handler)
		podID := d.RunPod(pod, handler)
		sleeper := d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "3600"))
		// crictl exits 1 itself and names the command's exit code.
		out, err := d.Crictl("", "exec", sleeper, "sh", "-c", "echo streamed; exit 3")
		if !strings.Contains(out, "streamed") || !strings.Contains(out, "exit code 3") || err == nil {
			t.Errorf("crictl exec: %q, %v; want output 'streamed' and exit code 3", out, err)
		}

		reader := harness.ContainerConfig("reader", "sh", "-c", "read line; echo got:$line")
		reader.Stdin, reader.StdinOnce = true, true
		rID := d.StartContainer(podID, pod, reader)
		out, err = d.Crictl("hello\n", "attach", "-i", rID)
		if err != nil || !strings.Contains(out, "got:hello") {
			t.Errorf("crictl attach -i: %q, %v; want got:hello", out, err)
		}
		if code := d.WaitExited(rID, 20*time.Second).ExitCode; code != 0 {
			t.Errorf("reader exit code %d", code)
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := fmt.Sprintf("%s --config %s exec -it %s sh -c '[ -t 0 ] && echo exec-it-tty'", filepath.Join(d.BinDir, "crictl"), filepath.Join(d.Dir, "crictl.yaml"), sleeper)
		ttyOut, err := exec.CommandContext(ctx, "script", "-qec", cmd, "/dev/null").CombinedOutput()
		if err != nil || !strings.Contains(string(ttyOut), "exec-it-tty") {
			t.Errorf("crictl exec -it: %q, %v", ttyOut, err)
		}
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// A container's own memory limit, with no kubelet pod cgroup: gVisor does
// not enforce it inside the sandbox, so the sandbox cgroup's limit follows
// the pod's containers (sum + sandbox_memory_overhead). A container that
// goes past it is OOMKilled with 137, on every handler.
func TestRunscContainerMemoryLimit(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("runsc-memlimit-" + handler)
		podID := d.RunPod(pod, handler)
		c := harness.ContainerConfig("hog", "sh", "-c", "echo start; dd if=/dev/urandom of=/dev/shm/fill bs=1M count=96; echo survived; sleep 1000")
		c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}}
		id := d.StartContainer(podID, pod, c)
		requireOOMKilled(t, d, id)
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// requireOOMKilled waits for a container to exit and read 137 OOMKilled.
func requireOOMKilled(t *testing.T, d *harness.Daemon, id string) {
	t.Helper()
	d.WaitExited(id, 90*time.Second)
	d.Eventually(10*time.Second, func() error {
		st := containerState(t, d, id)
		if st.Reason != "OOMKilled" || st.ExitCode != 137 {
			return fmt.Errorf("exit %d reason %q, want 137 OOMKilled", st.ExitCode, st.Reason)
		}
		return nil
	})
}
