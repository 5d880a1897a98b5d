//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

// Chaos tests (docs/chaos.md): kill -9 of containerd at random points of
// a pod lifecycle loop, a full state disk during pod create, and many pod
// create/remove cycles with containerd's fds and goroutines flat. The
// test command runs the short version; `make chaos` the long one:
//
//	SHIMLESS_CHAOS_POINTS  kill -9 points (default 25)
//	SHIMLESS_CHAOS_CYCLES  pod create/remove cycles (default 60)
//	SHIMLESS_CHAOS_SEED    replay a run (the seed is logged)

func chaosEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number >= 0", name, v)
	}
	return n
}

// chaosSeed is SHIMLESS_CHAOS_SEED or a fresh one, logged either way.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SHIMLESS_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SHIMLESS_CHAOS_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("seed %d (replay: SHIMLESS_CHAOS_SEED=%d)", seed, seed)
	return seed
}

// quitterName names a container that exits with code; the name carries
// the code, so it is known even for a container whose create the kill cut
// short.
func quitterName(code int) string { return fmt.Sprintf("quit-%d", code) }

func quitterCode(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "quit-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// chaosWorkload is the lifecycle loop a kill -9 lands in: pod create,
// container create/start (one that runs, one that exits with a known
// code), exec, container stop and remove, pod stop and remove, over and
// over until the connection dies.
type chaosWorkload struct {
	d       *harness.Daemon
	rt      runtimeapi.RuntimeServiceClient
	handler string
	parent  string
	point   int
	rng     *rand.Rand
	op      atomic.Value // string: the CRI call in flight

	mu    sync.Mutex
	exits map[string]knownExit // by container id: exits seen before the kill
	iters int
}

// knownExit is an exit the workload saw before the kill.
type knownExit struct {
	pod  string
	code int32
}

func (w *chaosWorkload) set(op string) { w.op.Store(op) }

func (w *chaosWorkload) run() error {
	for iter := 0; ; iter++ {
		if err := w.iteration(iter); err != nil {
			return err
		}
		w.mu.Lock()
		w.iters++
		w.mu.Unlock()
	}
}

func (w *chaosWorkload) iteration(iter int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt := w.rt
	pod := w.d.PodConfig(fmt.Sprintf("chaos-%d-%d", w.point, iter))
	pod.Linux.CgroupParent = w.parent
	w.set("RunPodSandbox")
	pr, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod, RuntimeHandler: w.handler})
	if err != nil {
		return fmt.Errorf("RunPodSandbox: %w", err)
	}
	podID := pr.PodSandboxId
	w.d.Track(podID)
	start := func(role string, c *runtimeapi.ContainerConfig) (string, error) {
		w.set("CreateContainer " + role)
		cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: c, SandboxConfig: pod})
		if err != nil {
			return "", fmt.Errorf("CreateContainer %s: %w", c.Metadata.Name, err)
		}
		w.d.Track(cr.ContainerId)
		w.set("StartContainer " + role)
		if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
			return "", fmt.Errorf("StartContainer %s: %w", c.Metadata.Name, err)
		}
		return cr.ContainerId, nil
	}
	sleeper, err := start("sleeper", harness.ContainerConfig("sleeper", "sleep", "3600"))
	if err != nil {
		return err
	}
	code := 1 + w.rng.IntN(120)
	qid, err := start("quitter", harness.ContainerConfig(quitterName(code), "sh", "-c", fmt.Sprintf("sleep 0.%d; exit %d", w.rng.IntN(6), code)))
	if err != nil {
		return err
	}
	w.set("ExecSync")
	er, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: sleeper, Cmd: []string{"echo", "ok"}, Timeout: 30})
	if err != nil {
		return fmt.Errorf("ExecSync: %w", err)
	}
	if strings.TrimSpace(string(er.Stdout)) != "ok" || er.ExitCode != 0 {
		return fmt.Errorf("ExecSync: exit %d, stdout %q, stderr %q", er.ExitCode, er.Stdout, er.Stderr)
	}
	w.set("ContainerStatus quitter")
	for deadline := time.Now().Add(30 * time.Second); ; {
		sr, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: qid})
		if err != nil {
			return fmt.Errorf("ContainerStatus: %w", err)
		}
		if sr.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			if sr.Status.ExitCode != int32(code) {
				return fmt.Errorf("container %s exited %d, want %d", quitterName(code), sr.Status.ExitCode, code)
			}
			w.mu.Lock()
			w.exits[qid] = knownExit{podID, sr.Status.ExitCode}
			w.mu.Unlock()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s still %s after 30s", quitterName(code), sr.Status.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.set("StopContainer sleeper")
	if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 1}); err != nil {
		return fmt.Errorf("StopContainer: %w", err)
	}
	w.set("RemoveContainer sleeper")
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: sleeper}); err != nil {
		return fmt.Errorf("RemoveContainer: %w", err)
	}
	w.set("StopPodSandbox")
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		return fmt.Errorf("StopPodSandbox: %w", err)
	}
	// CRI removes a pod's containers before the pod: a kill inside
	// RemovePodSandbox may leave the pod without them.
	w.mu.Lock()
	delete(w.exits, qid)
	w.mu.Unlock()
	w.set("RemovePodSandbox")
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		return fmt.Errorf("RemovePodSandbox: %w", err)
	}
	return nil
}

// cgroupChildren lists the cgroups under parent in every hierarchy: a pod
// cut short before the test learnt its id still has its cgroup there.
func cgroupChildren(parent string) []string {
	var out []string
	hier, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hier {
		entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", h.Name(), parent))
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, filepath.Join("/sys/fs/cgroup", h.Name(), parent, e.Name()))
			}
		}
	}
	return out
}

// converge checks, after a restart, that every pod is READY with its
// containers in their true state (a RUNNING container answers an exec, an
// exited one keeps its exit code) or stoppable and removable; stops and
// removes everything through CRI within 60s (retries allowed for the
// first 10s only); and returns what did not converge and what leaked.
func converge(t *testing.T, d *harness.Daemon, parent string, exits map[string]knownExit, restarted time.Time) (problems, leaks []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	retryUntil := restarted.Add(10 * time.Second)
	call := func(what string, f func() error) error {
		for {
			err := f()
			if err == nil || time.Now().After(retryUntil) || ctx.Err() != nil {
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				return nil
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var pods []*runtimeapi.PodSandbox
	var ctrs []*runtimeapi.Container
	if err := call("ListPodSandbox", func() error {
		r, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		pods = r.GetItems()
		return err
	}); err != nil {
		return []string{err.Error()}, nil
	}
	if err := call("ListContainers", func() error {
		r, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		ctrs = r.GetContainers()
		return err
	}); err != nil {
		return []string{err.Error()}, nil
	}
	ready := map[string]bool{}
	for _, p := range pods {
		d.Track(p.Id)
		ready[p.Id] = p.State == runtimeapi.PodSandboxState_SANDBOX_READY
	}
	for _, c := range ctrs {
		d.Track(c.Id)
	}
	// True states. A container that is RUNNING may be on its way out (a
	// quitter sleeps up to 0.5s): read its state again until it settles.
	for _, c := range ctrs {
		name := c.Metadata.GetName()
		var st *runtimeapi.ContainerStatus
		settle := time.Now().Add(10 * time.Second)
		for {
			if err := call("ContainerStatus "+name, func() error {
				r, err := d.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
				st = r.GetStatus()
				return err
			}); err != nil {
				problems = append(problems, err.Error())
				break
			}
			if _, quitter := quitterCode(name); st.State == runtimeapi.ContainerState_CONTAINER_RUNNING && quitter && time.Now().Before(settle) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			break
		}
		if st == nil {
			continue
		}
		desc := fmt.Sprintf("container %s %.12s (pod %.12s ready=%v)", name, c.Id, c.PodSandboxId, ready[c.PodSandboxId])
		switch st.State {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			er, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: c.Id, Cmd: []string{"echo", "alive"}, Timeout: 10})
			if err != nil || strings.TrimSpace(string(er.GetStdout())) != "alive" {
				problems = append(problems, fmt.Sprintf("%s is RUNNING but an exec in it fails: %v %q", desc, err, er.GetStdout()))
			}
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			if want, ok := quitterCode(name); ok && st.StartedAt != 0 && st.ExitCode != int32(want) {
				problems = append(problems, fmt.Sprintf("%s exited %d (reason %q), want %d", desc, st.ExitCode, st.Reason, want))
			}
			if want, ok := exits[c.Id]; ok && st.ExitCode != want.code {
				problems = append(problems, fmt.Sprintf("%s had exited %d before the kill, reports %d after", desc, want.code, st.ExitCode))
			}
		case runtimeapi.ContainerState_CONTAINER_CREATED:
		case runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			// CRI's word for a container whose create the kill cut short
			// (containerd has its metadata, CRI's status file was not yet
			// written): it must be stoppable and removable, below. One that
			// had started has a true state and must say it.
			if st.StartedAt != 0 {
				problems = append(problems, fmt.Sprintf("%s had started and is %s", desc, st.State))
			} else {
				t.Logf("%s is UNKNOWN (its create was cut short); it must be stoppable and removable", desc)
			}
		default:
			problems = append(problems, fmt.Sprintf("%s is %s", desc, st.State))
		}
	}
	// An exit seen before the kill outlives it: the workload removes a
	// quitter only with its pod.
	present := map[string]bool{}
	for _, c := range ctrs {
		present[c.Id] = true
	}
	for id, e := range exits {
		if _, podListed := ready[e.pod]; podListed && !present[id] {
			problems = append(problems, fmt.Sprintf("container %.12s had exited %d before the kill; after it, its pod %.12s is there but the container is not", id, e.code, e.pod))
		}
	}
	// Stop and remove everything.
	for _, p := range pods {
		if err := call("StopPodSandbox", func() error {
			_, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
			return err
		}); err != nil {
			problems = append(problems, fmt.Sprintf("pod %.12s (%s): %v", p.Id, p.State, err))
			continue
		}
		if err := call("RemovePodSandbox", func() error {
			_, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
			return err
		}); err != nil {
			problems = append(problems, fmt.Sprintf("pod %.12s (%s): %v", p.Id, p.State, err))
		}
	}
	if r, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil || len(r.Items) > 0 {
		problems = append(problems, fmt.Sprintf("pods left after removal: %v %v", err, r.GetItems()))
	}
	if r, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err != nil || len(r.Containers) > 0 {
		problems = append(problems, fmt.Sprintf("containers left after removal: %v %v", err, r.GetContainers()))
	}
	// What is left: processes and runsc's gofers may take a moment to be
	// reaped after the last remove returned.
	for deadline := time.Now().Add(5 * time.Second); ; {
		leaks = append(d.Leaks(), d.Residue()...)
		for _, c := range cgroupChildren(parent) {
			leaks = append(leaks, "cgroup "+c)
		}
		leaks = append(leaks, containerdObjects(d)...)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return problems, leaks
}

// containerdObjects lists the containers, tasks and sandboxes containerd
// still holds in CRI's namespace (its metadata, under CRI's records).
func containerdObjects(d *harness.Daemon) []string {
	var out []string
	for _, kind := range []string{"containers", "tasks", "sandboxes"} {
		cmd := exec.Command(filepath.Join(d.BinDir, "ctr"), "--address", d.Address, "--namespace", "k8s.io", kind, "ls")
		var stderr strings.Builder
		cmd.Stderr = &stderr // it has a cgroup v1 deprecation warning
		b, err := cmd.Output()
		if err != nil {
			out = append(out, fmt.Sprintf("ctr %s ls: %v: %s", kind, err, stderr.String()))
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for _, line := range lines[1:] { // a header, then one line each
			if f := strings.Fields(line); len(f) > 0 {
				out = append(out, fmt.Sprintf("containerd %s %s", strings.TrimSuffix(kind, "es"), f[0]))
			}
		}
	}
	return out
}

// TestChaosKill9: containerd is killed with SIGKILL at random points of the
// lifecycle loop, rotating through the runsc handlers; after each restart
// every pod converges and nothing leaks.
func TestChaosKill9(t *testing.T) {
	points := chaosEnvInt(t, "SHIMLESS_CHAOS_POINTS", 25)
	rng := rand.New(rand.NewPCG(chaosSeed(t), 0x5ca1ab1e))
	d := harness.Start(t, harness.Options{})
	parent := d.CgroupParent("chaos")
	begin := time.Now()
	converged, leakCount, restarts := 0, 0, 0
	hits := map[string]int{}
	// Leaks are counted at the point that made them: one still there from
	// an earlier point is not counted again.
	before := map[string]bool{}
	for point := range points {
		handler := harness.RunscHandlers[point%len(harness.RunscHandlers)]
		w := &chaosWorkload{
			d: d, rt: d.Runtime, handler: handler, parent: parent, point: point,
			rng:   rand.New(rand.NewPCG(rng.Uint64(), 0)),
			exits: map[string]knownExit{},
		}
		w.set("(none)")
		delay := time.Duration(rng.Int64N(int64(2500 * time.Millisecond)))
		downtime := time.Duration(rng.Int64N(int64(time.Second)))
		done := make(chan error, 1)
		go func() { done <- w.run() }()
		var werr error
		select {
		case werr = <-done:
		case <-time.After(delay):
		}
		if werr != nil {
			t.Fatalf("point %d (%s): the workload failed before the kill at %s: %v\ncontainerd log:\n%s", point, handler, w.op.Load(), werr, d.LogTail(80))
		}
		d.Kill9()
		werr = <-done
		op := w.op.Load().(string) // the call the kill cut
		w.mu.Lock()
		exits := maps.Clone(w.exits)
		iters := w.iters
		w.mu.Unlock()
		hits[op]++
		time.Sleep(downtime)
		d.Restart()
		restarts++
		problems, leaks := converge(t, d, parent, exits, time.Now())
		var fresh []string
		now := map[string]bool{}
		for _, l := range leaks {
			now[l] = true
			if !before[l] {
				fresh = append(fresh, l)
			}
		}
		before = now
		leakCount += len(fresh)
		t.Logf("point %d: %s, kill after %v in %s (iteration %d; workload: %v), down %v: %d problems, %d leaks",
			point, handler, delay.Round(time.Millisecond), op, iters, werr, downtime.Round(time.Millisecond), len(problems), len(fresh))
		if len(problems) == 0 && len(fresh) == 0 {
			converged++
			continue
		}
		t.Errorf("point %d (%s, kill in %s after %v): did not converge:\n  %s\n  leaked:\n  %s\ncontainerd log since the restart, last lines:\n%s",
			point, handler, op, delay, strings.Join(problems, "\n  "), strings.Join(fresh, "\n  "), d.LogTail(120))
	}
	var ops []string
	for op, n := range hits {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	slices.Sort(ops)
	t.Logf("kills by CRI call in flight: %s", strings.Join(ops, ", "))
	summary := fmt.Sprintf("chaos: points=%d converged=%d leaks=%d restarts=%d duration=%v", points, converged, leakCount, restarts, time.Since(begin).Round(time.Second))
	fmt.Println(summary)
	t.Log(summary)
	if converged != points || leakCount > 0 {
		t.Errorf("%s", summary)
	}
}

// fillDisk writes a file into dir until the disk is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "fill")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("fill %s: %v", path, err)
			}
			break
		}
	}
	// The last page or so.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// TestChaosStateDiskFull: with containerd's state dir on a small tmpfs
// filled up, pod create fails with a clear error (no space left) and
// leaves nothing behind; once space is freed pods run again. Each handler
// and both the whole state dir and only the runsc runtime's dir.
func TestChaosStateDiskFull(t *testing.T) {
	for _, tc := range []struct{ name, dir string }{
		{"containerd-state", "state"},
		{"runsc-state", "state/io.containerd.shimless.v1.runsc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := harness.Start(t, harness.Options{Tmpfs: map[string]string{tc.dir: "64m"}})
			full := filepath.Join(d.Dir, tc.dir)
			parent := d.CgroupParent("full-" + tc.name)
			results := []string{}
			for _, handler := range harness.RunscHandlers {
				fill := fillDisk(t, full)
				pod := d.PodConfig("full-" + handler)
				pod.Linux.CgroupParent = parent
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod, RuntimeHandler: handler})
				cancel()
				if err == nil {
					d.Track(resp.PodSandboxId)
					t.Errorf("%s: RunPodSandbox on a full state disk succeeded", handler)
				} else {
					t.Logf("%s: RunPodSandbox on a full disk: %v", handler, err)
					if !strings.Contains(err.Error(), "no space left on device") {
						t.Errorf("%s: RunPodSandbox on a full disk failed without saying so: %v", handler, err)
					}
				}
				leaks := leftAfterFailure(t, d, parent)
				if len(leaks) > 0 {
					t.Errorf("%s: after the failed create:\n%s", handler, strings.Join(leaks, "\n"))
				}
				if err := os.Remove(fill); err != nil {
					t.Fatal(err)
				}
				podID := d.RunPod(pod, handler)
				c := harness.ContainerConfig("after", "sh", "-c", "echo room; exec sleep 3600")
				id := d.StartContainer(podID, pod, c)
				er, err := d.Runtime.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"echo", "ok"}, Timeout: 30})
				if err != nil || strings.TrimSpace(string(er.Stdout)) != "ok" {
					t.Errorf("%s: exec after space was freed: %v %q", handler, err, er.GetStdout())
				}
				stopAndRemove(t, d, podID)
				leaks = leftAfterFailure(t, d, parent)
				if len(leaks) > 0 {
					t.Errorf("%s: after the pod run once space was freed:\n%s", handler, strings.Join(leaks, "\n"))
				}
				results = append(results, fmt.Sprintf("%s=%s", handler, map[bool]string{true: "ok", false: "FAIL"}[!t.Failed()]))
			}
			fmt.Printf("chaos-disk-full: %s %s\n", tc.name, strings.Join(results, " "))
		})
	}
}

// leftAfterFailure is what a daemon with no pods must not have: no pod or
// container listed, and no leak or residue.
func leftAfterFailure(t *testing.T, d *harness.Daemon, parent string) []string {
	t.Helper()
	var out []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		out = nil
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if r, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil || len(r.Items) > 0 {
			out = append(out, fmt.Sprintf("pods listed: %v %v", err, r.GetItems()))
		}
		cancel()
		out = append(out, d.Leaks()...)
		out = append(out, d.Residue()...)
		for _, c := range cgroupChildren(parent) {
			out = append(out, "cgroup "+c)
		}
		out = append(out, containerdObjects(d)...)
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// goroutines reads go_goroutines from containerd's metrics endpoint.
func goroutines(t *testing.T, addr string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/v1/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("go_goroutines %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatalf("no go_goroutines on the metrics endpoint")
	return 0
}

func fdCount(t *testing.T, pid int) int {
	t.Helper()
	return len(fdTargets(t, pid))
}

// fdTargets lists what a process's open fds point at, sorted.
func fdTargets(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out = append(out, target)
	}
	slices.Sort(out)
	return out
}

// fdKinds counts fd targets by kind ("socket", "pipe", "anon_inode:[eventfd]",
// or the path).
func fdKinds(targets []string) map[string]int {
	out := map[string]int{}
	for _, t := range targets {
		if i := strings.Index(t, ":["); i > 0 && !strings.HasPrefix(t, "anon_inode") {
			t = t[:i]
		}
		out[t]++
	}
	return out
}

// within5 says whether end is within ±5% of start.
func within5(start, end int) bool {
	diff := float64(end - start)
	return diff <= 0.05*float64(start) && -diff <= 0.05*float64(start)
}

// TestChaosPodCycles: pod create/remove cycles, rotating through the
// runsc handlers, each with a container and an exec; containerd's open
// fds and goroutines after the warm-up and at the end are within ±5%.
func TestChaosPodCycles(t *testing.T) {
	cycles := chaosEnvInt(t, "SHIMLESS_CHAOS_CYCLES", 60)
	warmup := max(6, cycles/10)
	if cycles <= warmup {
		t.Fatalf("SHIMLESS_CHAOS_CYCLES=%d: want more than the %d warm-up cycles", cycles, warmup)
	}
	addr := freeLoopbackAddr(t)
	d := harness.Start(t, harness.Options{ExtraConfig: fmt.Sprintf("[metrics]\n  address = %q\n", addr)})
	pid := d.Pid()
	begin := time.Now()
	// settled samples fds and goroutines once they have stopped moving:
	// the last exit watch, event and stream goroutines of a removed pod end
	// just after its remove returned.
	settled := func() (fds, gor int) {
		fds, gor = fdCount(t, pid), goroutines(t, addr)
		for range 20 {
			time.Sleep(500 * time.Millisecond)
			f, g := fdCount(t, pid), goroutines(t, addr)
			if f == fds && g == gor {
				break
			}
			fds, gor = f, g
		}
		return fds, gor
	}
	cycle := func(i int, handler string) {
		pod := d.PodConfig(fmt.Sprintf("cycle-%d", i))
		podID := d.RunPod(pod, handler)
		id := d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "3600"))
		er, err := d.Runtime.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"echo", "ok"}, Timeout: 30})
		if err != nil || strings.TrimSpace(string(er.Stdout)) != "ok" {
			t.Fatalf("cycle %d (%s): exec: %v %q", i, handler, err, er.GetStdout())
		}
		stopAndRemove(t, d, podID)
	}
	var fd0, g0 int
	var kinds0 map[string]int
	for i := range cycles {
		if i == warmup {
			fd0, g0 = settled()
			kinds0 = fdKinds(fdTargets(t, pid))
			t.Logf("after %d warm-up cycles: %d fds, %d goroutines", warmup, fd0, g0)
		}
		cycle(i, harness.RunscHandlers[i%len(harness.RunscHandlers)])
	}
	fd1, g1 := settled()
	leaks := append(d.Leaks(), d.Residue()...)
	summary := fmt.Sprintf("chaos-cycles: cycles=%d fds=%d->%d goroutines=%d->%d leaks=%d duration=%v",
		cycles, fd0, fd1, g0, g1, len(leaks), time.Since(begin).Round(time.Second))
	fmt.Println(summary)
	t.Log(summary)
	if !within5(fd0, fd1) {
		kinds1 := fdKinds(fdTargets(t, pid))
		for k := range kinds0 {
			if _, ok := kinds1[k]; !ok {
				kinds1[k] = 0
			}
		}
		for k, n := range kinds1 {
			if n != kinds0[k] {
				t.Logf("fds to %s: %d after the warm-up, %d at the end", k, kinds0[k], n)
			}
		}
		t.Errorf("containerd's fds went from %d after the warm-up to %d after %d cycles (more than ±5%%)", fd0, fd1, cycles)
	}
	if !within5(g0, g1) {
		t.Errorf("containerd's goroutines went from %d after the warm-up to %d after %d cycles (more than ±5%%)", g0, g1, cycles)
	}
	if len(leaks) > 0 {
		t.Errorf("left after %d cycles:\n%s", cycles, strings.Join(leaks, "\n"))
	}
	if within5(fd0, fd1) && within5(g0, g1) {
		return
	}
	// Which handler, and which goroutines: a few cycles per handler, then
	// containerd's own stack dump (SIGUSR1) by where the goroutines wait.
	for _, handler := range harness.RunscHandlers {
		f0, g0 := settled()
		const n = 6
		for i := range n {
			cycle(cycles+i, handler)
		}
		f1, g1 := settled()
		t.Logf("%d cycles of %s: fds %d->%d, goroutines %d->%d", n, handler, f0, f1, g0, g1)
	}
	t.Logf("containerd's goroutines by where they wait (count > 3):\n%s", goroutineDump(t, d))
}

// goroutineDump has containerd dump its goroutines into its log (SIGUSR1)
// and summarises them by their first frames.
func goroutineDump(t *testing.T, d *harness.Daemon) string {
	t.Helper()
	before := len(d.Log())
	pid := d.Pid()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return err.Error()
	}
	// containerd writes a copy to a file in the temp dir too.
	defer os.Remove(filepath.Join(os.TempDir(), fmt.Sprintf("containerd.%d.stacks.log", pid)))
	var dump string
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		log := d.Log()[before:]
		if i := strings.Index(log, "=== BEGIN goroutine stack dump ==="); i >= 0 {
			if j := strings.Index(log[i:], "=== END goroutine stack dump ==="); j >= 0 {
				dump = log[i : i+j]
				break
			}
		}
	}
	dump = strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\"`, `"`).Replace(dump)
	count := map[string]int{}
	for _, g := range strings.Split(dump, "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		// The innermost frame, then up to three frames of non-standard
		// packages (where it waits, and why), with the arguments cut.
		var frames []string
		for i, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || len(frames) >= 4 || i > 0 && !strings.Contains(l, ".com/") && !strings.Contains(l, ".io/") && !strings.Contains(l, ".org/") {
				continue
			}
			if j := strings.LastIndex(l, "("); j > 0 && !strings.HasPrefix(l, "created by") {
				l = l[:j]
			}
			if j := strings.Index(l, " in goroutine "); j > 0 {
				l = l[:j] // "created by f in goroutine N"
			}
			frames = append(frames, strings.TrimSpace(l))
		}
		count[strings.Join(frames, " <- ")]++
	}
	var out []string
	for k, n := range count {
		if n > 3 {
			out = append(out, fmt.Sprintf("%5d %s", n, k))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
