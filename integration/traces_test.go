//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/integration/harness"
	"github.com/shimless/shimless/telemetry/spantree"
)

// TestObservabilityTraces: with containerd exporting OTLP/HTTP to a
// receiver on loopback, a pod's sandbox start span arrives with its runsc
// run as its child, and the container's task spans with their runsc and
// control-socket children.
func TestObservabilityTraces(t *testing.T) {
	recv := &spantree.Receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: recv}
	go srv.Serve(ln)
	defer srv.Close()

	d := harness.Start(t, harness.Options{Env: []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + ln.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_TRACES_SAMPLER=always_on",
		// The batch processor exports every 5s by default.
		"OTEL_BSP_SCHEDULE_DELAY=200",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod := d.PodConfig("traces")
	podID := d.RunPod(pod, "runsc")
	d.StartContainer(podID, pod, harness.ContainerConfig("sleeper", "sleep", "600"))
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}

	children := func(tr *spantree.Tree) map[string]bool {
		names := map[string]bool{}
		for _, c := range tr.Children {
			names[c.Name] = true
		}
		return names
	}
	want := map[string][]string{
		// One runsc run creates and starts the sandbox, and the plain
		// container at its start (its create runs no runsc); kills are
		// control-socket calls.
		"shimless.sandbox.start":    {"runsc.run"},
		"shimless.sandbox.stop":     {"runsc.containerManager.Signal", "runsc.delete"},
		"shimless.task.create":      nil,
		"shimless.task.start":       {"runsc.run"},
		"shimless.sandbox.create":   nil,
		"shimless.sandbox.shutdown": nil,
	}
	var last error
	d.Eventually(30*time.Second, func() error {
		trees := spantree.Build(recv.Spans())
		for name, kids := range want {
			tr := spantree.Find(trees, name)
			if tr == nil {
				last = fmt.Errorf("no span %s yet", name)
				return last
			}
			got := children(tr)
			for _, k := range kids {
				if !got[k] {
					last = fmt.Errorf("span %s has children %v, want %s among them", name, got, k)
					return last
				}
			}
			if tr.Attributes["sandbox.id"] != "" && tr.Attributes["sandbox.id"] != podID {
				last = fmt.Errorf("span %s has sandbox.id %s, want %s", name, tr.Attributes["sandbox.id"], podID)
				return last
			}
		}
		return nil
	})
	var out strings.Builder
	spantree.Render(&out, spantree.Build(recv.Spans()))
	t.Logf("received spans:\n%s", out.String())
}
