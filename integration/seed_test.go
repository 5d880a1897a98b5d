//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

// The seed failures (issue 8), in each way operators configure a gVisor
// handler, with running containers and execs in flight.

// TestUserNamespacePodEveryHandler: a user-namespaced pod (mode POD, root
// mapped to a host range) runs a container on every handler, the gVisor
// drop-in with its options table included (containerd#11091: CRI sent
// runc's IO-ownership options to every runtime); the sandbox's host
// process runs in the pod's user namespace.
func TestUserNamespacePodEveryHandler(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	for i, handler := range harness.RunscHandlers {
		t.Run(handler, func(t *testing.T) {
			hostID := uint32(65536 * (10 + i))
			pod := d.PodConfig("userns-" + handler)
			c := harness.ContainerConfig("userns", "sh", "-c", "echo uid=$(id -u); exec sleep 3600")
			harness.UserNamespace(pod, hostID, c)
			podID := d.RunPod(pod, handler)
			id := d.StartContainer(podID, pod, c)
			d.Eventually(15*time.Second, func() error {
				lines, err := d.ContainerLog(pod, c)
				if err != nil {
					return err
				}
				if !slices.Contains(lines, "stdout uid=0") {
					return fmt.Errorf("log %q lacks uid=0", lines)
				}
				return nil
			})
			if s := containerState(t, d, id); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("container is %s, want RUNNING", s.State)
			}
			pid := podPid(t, d, podID)
			uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Fields(string(uidMap)), []string{"0", fmt.Sprint(hostID), "65536"}; !slices.Equal(got, want) {
				t.Errorf("sandbox process %d uid_map %q, want %v", pid, uidMap, want)
			}
			stopAndRemove(t, d, podID)
		})
	}
	noLeaks(t, d)
}

// TestHungSandboxWithContainerAndExec: a pod with a running container and
// an exec in flight has its sandbox SIGSTOPped (it answers nothing).
// StopPodSandbox still returns within stop_timeout + 5s: the container's
// kill escalates to the sandbox's process tree, the container reads as
// exited 137, the exec returns, and nothing is left once the pod is
// removed.
func TestHungSandboxWithContainerAndExec(t *testing.T) {
	const stopTimeout = 3 * time.Second
	d := harness.Start(t, harness.Options{ShimlessConfig: fmt.Sprintf("  stop_timeout = %q", stopTimeout.String())})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("hung-" + handler)
		podID := d.RunPod(pod, handler)
		id := d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "3600"))
		ctx := context.Background()
		execDone := make(chan error, 1)
		go func() {
			_, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "600"}, Timeout: 120})
			execDone <- err
		}()
		time.Sleep(time.Second) // the exec is running
		pid := podPid(t, d, podID)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if _, err := d.Runtime.StopPodSandbox(sctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatalf("StopPodSandbox: %v", err)
		}
		took := time.Since(begin)
		t.Logf("hung pod with a running container and exec stopped in %v", took)
		if took > stopTimeout+5*time.Second {
			t.Errorf("stop took %v, want <= stop_timeout (%v) + 5s", took, stopTimeout)
		}
		if st := containerState(t, d, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
			t.Errorf("container is %s with exit code %d, want EXITED 137", st.State, st.ExitCode)
		}
		select {
		case <-execDone:
		case <-time.After(15 * time.Second):
			t.Errorf("the exec in flight did not return after its sandbox was killed")
		}
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatalf("RemovePodSandbox: %v", err)
		}
		noLeaks(t, d)
	})
}

// TestContainerInitDiesChildLives: a container's main process is killed
// while its child runs (pod-wide PID namespace, as containerd's
// TestSharedPidMultiProcessContainerStop): the container reads EXITED, its
// remaining processes are killed so its IO closes, and it and its pod are
// removable.
func TestContainerInitDiesChildLives(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("orphan-" + handler)
		pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
		}
		podID := d.RunPod(pod, handler)
		c := harness.ContainerConfig("parent", "sh", "-c", "sleep 3600 & echo started; sleep 1; kill -9 $$")
		c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
		}
		id := d.StartContainer(podID, pod, c)
		st := d.WaitExited(id, 30*time.Second)
		if st.ExitCode != 137 {
			t.Errorf("exit code %d, want 137", st.ExitCode)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 2}); err != nil {
			t.Errorf("StopContainer: %v", err)
		}
		if _, err := d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("RemoveContainer: %v", err)
		}
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}

// TestShimStylePodSurvivesKill9: containerd is killed with SIGKILL while
// pods of every handler run a container; after the restart each pod is
// still READY, its container RUNNING and answering execs (recovery never
// kills a sandbox the task runtime owns: a gVisor-shim style pod's).
func TestShimStylePodSurvivesKill9(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	type podc struct{ pod, ctr string }
	pods := map[string]podc{}
	for _, handler := range harness.RunscHandlers {
		pod := d.PodConfig("k9-" + handler)
		podID := d.RunPod(pod, handler)
		pods[handler] = podc{podID, d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "3600"))}
	}
	d.Kill9()
	d.Restart()
	ctx := context.Background()
	for handler, p := range pods {
		requireState(t, d, p.pod, runtimeapi.PodSandboxState_SANDBOX_READY, 10*time.Second)
		if s := containerState(t, d, p.ctr); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("%s: container is %s after the restart, want RUNNING", handler, s.State)
		}
		resp, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: p.ctr, Cmd: []string{"echo", "alive"}, Timeout: 30})
		if err != nil || strings.TrimSpace(string(resp.GetStdout())) != "alive" {
			t.Errorf("%s: exec after the restart: %v %q", handler, err, resp.GetStdout())
		}
	}
	for _, p := range pods {
		stopAndRemove(t, d, p.pod)
	}
	noLeaks(t, d)
}

// TestStandaloneContainersWebWeb2: stopping the standalone container "web"
// leaves "web2" (whose id and bundle path have "web" as a prefix) running;
// both survive a kill -9 of containerd before that.
func TestStandaloneContainersWebWeb2(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	for _, id := range []string{"web2", "web"} {
		if out, err := d.Ctr("run", "-d", "--runtime", "io.containerd.runsc.v1", harness.Busybox, id, "sleep", "3600"); err != nil {
			t.Fatalf("ctr run %s: %v: %s", id, err, out)
		}
	}
	taskStatus := func(id string) string {
		out, _ := d.Ctr("tasks", "ls")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == id {
				return f[2]
			}
		}
		return "absent"
	}
	// Each has a private sandbox under its own runsc root: both survive a
	// containerd restart.
	d.Kill9()
	d.Restart()
	for _, id := range []string{"web", "web2"} {
		if s := taskStatus(id); s != "RUNNING" {
			t.Errorf("%s is %s after the restart, want RUNNING", id, s)
		}
	}
	if _, err := d.Ctr("tasks", "kill", "-s", "SIGKILL", "web"); err != nil {
		t.Fatal(err)
	}
	d.Eventually(10*time.Second, func() error {
		if s := taskStatus("web"); s != "STOPPED" {
			return fmt.Errorf("web is %s", s)
		}
		return nil
	})
	for _, args := range [][]string{{"tasks", "rm", "web"}, {"containers", "rm", "web"}} {
		if out, err := d.Ctr(args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	time.Sleep(time.Second)
	if s := taskStatus("web2"); s != "RUNNING" {
		t.Errorf("web2 is %s after web was stopped and removed, want RUNNING", s)
	}
	if out, err := d.Ctr("tasks", "exec", "--exec-id", "probe", "web2", "echo", "alive"); err != nil || !strings.Contains(out, "alive") {
		t.Errorf("exec in web2: %v %q", err, out)
	}
	for _, args := range [][]string{{"tasks", "kill", "-s", "SIGKILL", "web2"}} {
		if out, err := d.Ctr(args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	d.Eventually(10*time.Second, func() error {
		if s := taskStatus("web2"); s != "STOPPED" {
			return fmt.Errorf("web2 is %s", s)
		}
		return nil
	})
	for _, args := range [][]string{{"tasks", "rm", "web2"}, {"containers", "rm", "web2"}} {
		if out, err := d.Ctr(args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	noLeaks(t, d)
}

// TestTwoPodsOneCgroupParent: two pods under one cgroup parent; stopping
// and removing one leaves the other READY with its container running.
func TestTwoPodsOneCgroupParent(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		parent := d.CgroupParent("shared-" + handler)
		var pods, ctrs []string
		for i := range 2 {
			pod := d.PodConfig(fmt.Sprintf("shared-%s-%d", handler, i))
			pod.Linux.CgroupParent = parent
			podID := d.RunPod(pod, handler)
			pods = append(pods, podID)
			ctrs = append(ctrs, d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "3600")))
		}
		stopAndRemove(t, d, pods[0])
		time.Sleep(time.Second)
		requireState(t, d, pods[1], runtimeapi.PodSandboxState_SANDBOX_READY, time.Second)
		if s := containerState(t, d, ctrs[1]); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("the other pod's container is %s, want RUNNING", s.State)
		}
		resp, err := d.Runtime.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: ctrs[1], Cmd: []string{"echo", "alive"}, Timeout: 30})
		if err != nil || strings.TrimSpace(string(resp.GetStdout())) != "alive" {
			t.Errorf("exec in the other pod: %v %q", err, resp.GetStdout())
		}
		stopAndRemove(t, d, pods[1])
		noLeaks(t, d)
	})
}

// TestSeccompProfileEnforcedInSandbox: a container with a seccomp profile
// (RuntimeDefault, as kubelet asks for it) runs under it inside the
// sandbox (runsc --oci-seccomp, on by default); one without runs without.
func TestSeccompProfileEnforcedInSandbox(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("seccomp-" + handler)
		podID := d.RunPod(pod, handler)
		for _, tc := range []struct {
			name    string
			profile *runtimeapi.SecurityProfile
			want    string
		}{
			{"default", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, "Seccomp:\t2"},
			{"unconfined", nil, "Seccomp:\t0"},
		} {
			c := harness.ContainerConfig("seccomp-"+tc.name, "grep", "Seccomp:", "/proc/self/status")
			c.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{Seccomp: tc.profile}
			id := d.StartContainer(podID, pod, c)
			d.WaitExited(id, 30*time.Second)
			d.Eventually(10*time.Second, func() error {
				lines, err := d.ContainerLog(pod, c)
				if err != nil {
					return err
				}
				if len(lines) != 1 || lines[0] != "stdout "+tc.want {
					return fmt.Errorf("%s: log %q, want %q", tc.name, lines, tc.want)
				}
				return nil
			})
		}
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}
