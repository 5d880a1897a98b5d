package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	metrics "github.com/docker/go-metrics"
)

// TestExposition: every metric is served by containerd's metrics handler
// under its documented name once touched.
func TestExposition(t *testing.T) {
	_, done := SandboxOp(context.Background(), OpStart, "sb")
	done(errors.New("boom"))
	_, done = TaskOp(context.Background(), "exec_start", "ns", "c", "e")
	done(nil)
	_, done = RunscCall(context.Background(), KindCLI, "create", "sb")
	done(nil)
	SandboxRunning()
	SandboxNotRunning()
	ForcedTeardown(ForcedStopTimeout)

	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`containerd_shimless_sandbox_operation_seconds_count{operation="start"} 1`,
		`containerd_shimless_failures_total{phase="start",reason="other"} 1`,
		`containerd_shimless_exec_start_seconds_count 1`,
		`containerd_shimless_runsc_call_seconds_count{kind="cli",verb="create"} 1`,
		`containerd_shimless_sandboxes_running 0`,
		`containerd_shimless_forced_teardowns_total{path="stop_timeout"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %q in:\n%s", want, body)
		}
	}
}
