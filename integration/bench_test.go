//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
)

// podCycle runs, stops and removes one pod and returns how long running it
// took and how long stopping+removing took.
func podCycle(b *testing.B, d *harness.Daemon, handler string, i int) (run, stop time.Duration) {
	ctx := context.Background()
	begin := time.Now()
	resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: d.PodConfig(fmt.Sprintf("bench-%s-%d", handler, i)), RuntimeHandler: handler})
	if err != nil {
		b.Fatal(err)
	}
	run = time.Since(begin)
	d.Track(resp.PodSandboxId)
	begin = time.Now()
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
		b.Fatal(err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
		b.Fatal(err)
	}
	return run, time.Since(begin)
}

// BenchmarkPodLifecycle measures pod start and stop on runsc against runc
// (the reference) in the same run and reports the ratios.
//
//	make bench
func BenchmarkPodLifecycle(b *testing.B) {
	d := harness.Start(b, harness.Options{})
	var runs, stops [2]time.Duration
	for i := 0; i < b.N; i++ {
		for h, handler := range []string{"runc", "runsc"} {
			r, s := podCycle(b, d, handler, i)
			runs[h] += r
			stops[h] += s
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(runs[1].Milliseconds())/n, "runsc-start-ms")
	b.ReportMetric(float64(stops[1].Milliseconds())/n, "runsc-stop-ms")
	b.ReportMetric(float64(runs[0].Milliseconds())/n, "runc-start-ms")
	b.ReportMetric(float64(stops[0].Milliseconds())/n, "runc-stop-ms")
	b.ReportMetric(float64(runs[1])/float64(runs[0]), "start-ratio-runsc/runc")
	b.ReportMetric(float64(stops[1])/float64(stops[0]), "stop-ratio-runsc/runc")
}

// BenchmarkManagementMemory reports what running 10 runsc pods costs
// containerd itself (shimless has no per-pod shim) against the runsc
// sandboxes' own memory, measured in the same run.
func BenchmarkManagementMemory(b *testing.B) {
	d := harness.Start(b, harness.Options{})
	const pods = 10
	for i := 0; i < b.N; i++ {
		before := rssKB(b, d.Pid())
		var ids []string
		for p := range pods {
			ids = append(ids, d.RunPod(d.PodConfig(fmt.Sprintf("mem-%d-%d", i, p)), "runsc"))
		}
		after := rssKB(b, d.Pid())
		var sandboxes int
		for _, id := range ids {
			st, err := d.Runtime.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
			if err != nil {
				b.Fatal(err)
			}
			info := st.Info["info"]
			pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(strings.SplitN(info, `"pid":`, 2)[1], ",", 2)[0]))
			sandboxes += rssKB(b, pid)
		}
		b.ReportMetric(float64(after-before)/pods, "containerd-KB/pod")
		b.ReportMetric(float64(sandboxes)/pods, "sandbox-KB/pod")
		b.ReportMetric(float64(after-before)/float64(sandboxes), "mgmt/sandbox-ratio")
		if err := d.RemoveAllPods(); err != nil {
			b.Fatal(err)
		}
	}
}

func rssKB(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return kb
		}
	}
	return 0
}
