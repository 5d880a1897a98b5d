// Package telemetry defines shimless's metrics and spans: what the sandbox
// controller, the task runtime and the runsc client report about
// themselves. Metrics are registered once, with containerd's own metrics
// library (docker/go-metrics), so they appear on containerd's metrics
// endpoint next to containerd's (namespace containerd, subsystem shimless).
// Spans go through containerd's tracing package, so they are exported by
// whatever tracing processor the daemon is configured with.
package telemetry

import (
	"time"

	metrics "github.com/docker/go-metrics"
)

// Sandbox operations (label "operation" and failure phases).
const (
	OpCreate   = "create"
	OpStart    = "start"
	OpStop     = "stop"
	OpShutdown = "shutdown"
)

// Failure phases beyond the sandbox operations.
const (
	PhaseTaskCreate = "task_create"
	PhaseTaskStart  = "task_start"
	PhaseExecStart  = "exec_start"
)

// Forced-teardown paths (label "path").
const (
	// ForcedStopTimeout: a sandbox did not exit within the stop timeout
	// and its process tree was killed.
	ForcedStopTimeout = "stop_timeout"
	// ForcedKillSandbox: the runtime tore down a sandbox that did not
	// answer a kill (Controller.KillSandbox).
	ForcedKillSandbox = "kill_sandbox"
	// ForcedTaskEscalate: a task's kill was escalated to its sandbox's
	// process tree (a root container the runtime runs itself).
	ForcedTaskEscalate = "task_escalate"
)

// Kinds of runsc invocation (label "kind").
const (
	KindCLI = "cli" // a runsc process
	KindRPC = "rpc" // a call on a sandbox's control socket
)

var (
	sandboxOpTimer   metrics.LabeledTimer
	failures         metrics.LabeledCounter
	sandboxesRunning metrics.Gauge
	forcedTeardowns  metrics.LabeledCounter
	runscTimer       metrics.LabeledTimer
	runscErrors      metrics.LabeledCounter
	execStartTimer   metrics.Timer
)

func init() {
	ns := metrics.NewNamespace("containerd", "shimless", nil)
	sandboxOpTimer = ns.NewLabeledTimer("sandbox_operation",
		"time of a sandbox controller operation (create, start, stop, shutdown), failed ones included", "operation")
	failures = ns.NewLabeledCounter("failures",
		"failed operations by phase and reason (an errdefs kind)", "phase", "reason")
	sandboxesRunning = ns.NewGauge("sandboxes_running",
		"runsc sandboxes of the controller that are running", metrics.Unit(""))
	forcedTeardowns = ns.NewLabeledCounter("forced_teardowns",
		"sandboxes whose process tree was killed because they did not exit or answer", "path")
	runscTimer = ns.NewLabeledTimer("runsc_call",
		"time of one runsc invocation: a CLI call or a control-socket RPC", "kind", "verb")
	runscErrors = ns.NewLabeledCounter("runsc_call_errors",
		"runsc invocations that failed (cancelled waits excluded)", "kind", "verb")
	execStartTimer = ns.NewTimer("exec_start",
		"time to start an exec process in a sandbox, failed ones included")
	metrics.Register(ns)
}

// SandboxRunning and SandboxNotRunning move the running-sandboxes gauge.
func SandboxRunning()    { sandboxesRunning.Inc() }
func SandboxNotRunning() { sandboxesRunning.Dec() }

// ForcedTeardown counts one hung-sandbox kill.
func ForcedTeardown(path string) { forcedTeardowns.WithValues(path).Inc() }

// Failure counts one failed operation of phase, classified by err.
func Failure(phase string, err error) {
	failures.WithValues(phase, Reason(err)).Inc()
}

func observeSandboxOp(op string, since time.Time) {
	sandboxOpTimer.WithValues(op).UpdateSince(since)
}

func observeRunsc(kind, verb string, since time.Time, failed bool) {
	runscTimer.WithValues(kind, verb).UpdateSince(since)
	if failed {
		runscErrors.WithValues(kind, verb).Inc()
	}
}

func observeExecStart(since time.Time) { execStartTimer.UpdateSince(since) }
