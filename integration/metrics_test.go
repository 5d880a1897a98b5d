//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

// freeLoopbackAddr returns a 127.0.0.1 address with a port free right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape reads containerd's metrics endpoint and returns every sample of
// the shimless subsystem, keyed by name and labels as exposed
// (`name{l1="v1",l2="v2"}`).
func scrape(t *testing.T, d *harness.Daemon, addr string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(scrapeRaw(t, d, addr)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "containerd_shimless_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// scrapeRaw returns the metrics endpoint's whole answer. A failed scrape
// shows containerd's panic, if it died of one.
func scrapeRaw(t *testing.T, d *harness.Daemon, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/metrics")
	if err != nil {
		log := d.Log()
		if i := strings.Index(log, "panic"); i >= 0 {
			log = log[i:]
		}
		t.Fatalf("scrape: %v\n%s", err, log[max(0, len(log)-8000):])
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: HTTP %d: %v", resp.StatusCode, err)
	}
	return string(body)
}

// TestObservabilityMetrics: one pod with a container and an exec, stopped
// and removed, shows up on containerd's metrics endpoint as one create,
// one start, one shutdown, one exec, runsc calls by verb, and no running
// sandbox afterwards.
func TestObservabilityMetrics(t *testing.T) {
	addr := freeLoopbackAddr(t)
	d := harness.Start(t, harness.Options{ExtraConfig: fmt.Sprintf("[metrics]\n  address = %q\n", addr)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pod := d.PodConfig("metrics")
	podID := d.RunPod(pod, "runsc")
	id := d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "600"))
	resp, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"echo", "hi"}, Timeout: 30})
	if err != nil || resp.ExitCode != 0 {
		t.Fatalf("ExecSync: %v %+v", err, resp)
	}
	// containerd's per-task cgroup metrics cover runsc tasks too (a task
	// metric without every entry they read crashed containerd here).
	body := scrapeRaw(t, d, addr)
	if !strings.Contains(body, `container_memory_usage_usage_bytes{container_id="`+id+`"`) {
		t.Errorf("no container_memory_usage_usage_bytes for runsc container %s", id)
	}
	m := scrape(t, d, addr)
	if got := m["containerd_shimless_sandboxes_running"]; got != 1 {
		t.Errorf("sandboxes_running with the pod up = %v, want 1", got)
	}
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}

	m = scrape(t, d, addr)
	for k, v := range m {
		if strings.Contains(k, "_count") || strings.Contains(k, "_total") || !strings.Contains(k, "_bucket") && !strings.Contains(k, "_sum") {
			t.Logf("%s %v", k, v)
		}
	}
	exact := map[string]float64{
		`containerd_shimless_sandbox_operation_seconds_count{operation="create"}`:                       1,
		`containerd_shimless_sandbox_operation_seconds_count{operation="start"}`:                        1,
		`containerd_shimless_sandbox_operation_seconds_count{operation="shutdown"}`:                     1,
		`containerd_shimless_sandboxes_running`:                                                         0,
		`containerd_shimless_exec_start_seconds_count`:                                                  1,
		`containerd_shimless_runsc_call_seconds_count{kind="rpc",verb="containerManager.ExecuteAsync"}`: 1,
	}
	for k, want := range exact {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	atLeast := map[string]float64{
		// CRI stops a pod on StopPodSandbox and again on RemovePodSandbox.
		`containerd_shimless_sandbox_operation_seconds_count{operation="stop"}`: 1,
		// The sandbox and the workload container: one runsc run each.
		`containerd_shimless_runsc_call_seconds_count{kind="cli",verb="run"}`:                     2,
		`containerd_shimless_runsc_call_seconds_count{kind="rpc",verb="containerManager.Signal"}`: 1,
		`containerd_shimless_runsc_call_seconds_count{kind="cli",verb="delete"}`:                  1,
		`containerd_shimless_runsc_call_seconds_count{kind="rpc",verb="containerManager.Wait"}`:   1,
	}
	for k, want := range atLeast {
		if got := m[k]; got < want {
			t.Errorf("%s = %v, want >= %v", k, got, want)
		}
	}
	// A pod start and teardown spawn no runsc create, start or kill: a
	// plain container and the sandbox are each one runsc run, and every
	// kill is a control-socket call.
	for _, verb := range []string{"create", "start", "kill"} {
		if got := m[`containerd_shimless_runsc_call_seconds_count{kind="cli",verb="`+verb+`"}`]; got != 0 {
			t.Errorf("runsc %s ran %v times", verb, got)
		}
	}
	for k, v := range m {
		if strings.HasPrefix(k, "containerd_shimless_forced_teardowns_total") && v != 0 {
			t.Errorf("%s = %v, want 0 (nothing hung)", k, v)
		}
		if strings.HasPrefix(k, "containerd_shimless_failures_total") && strings.Contains(k, `phase="start"`) {
			t.Errorf("%s = %v: a sandbox start failed", k, v)
		}
	}
}

// TestObservabilityMetricsRestart: sandboxes recovered by a restarted
// containerd count as running, and leave the gauge at 0 when removed.
func TestObservabilityMetricsRestart(t *testing.T) {
	addr := freeLoopbackAddr(t)
	d := harness.Start(t, harness.Options{ExtraConfig: fmt.Sprintf("[metrics]\n  address = %q\n", addr)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod := d.PodConfig("metrics-restart")
	podID := d.RunPod(pod, "runsc")
	d.Kill9()
	d.Restart()
	if got := scrape(t, d, addr)["containerd_shimless_sandboxes_running"]; got != 1 {
		t.Errorf("sandboxes_running after restart = %v, want 1 (recovered)", got)
	}
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	m := scrape(t, d, addr)
	if got := m["containerd_shimless_sandboxes_running"]; got != 0 {
		t.Errorf("sandboxes_running after removal = %v, want 0", got)
	}
	if got := m[`containerd_shimless_sandbox_operation_seconds_count{operation="shutdown"}`]; got != 1 {
		t.Errorf("shutdowns after restart = %v, want 1", got)
	}
}
