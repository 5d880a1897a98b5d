package runsc

import (
	"context"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/runsc/specutils"
)

// gVisor's and CRI's vocabulary, in one place. vocab_test.go pins the
// uRPC method names against the pinned gVisor source.

// The sandbox control socket's uRPC methods
// (gvisor.dev/gvisor/runsc/boot: ContMgrWait, ContMgrWaitPID,
// ContMgrExecuteAsync, ContMgrPortForward, ContMgrEvent, ContMgrSignal).
const (
	MethodWait         = "containerManager.Wait"
	MethodWaitPID      = "containerManager.WaitPID"
	MethodExecuteAsync = "containerManager.ExecuteAsync"
	MethodPortForward  = "containerManager.PortForward"
	MethodEvent        = "containerManager.Event"
	MethodSignal       = "containerManager.Signal"
)

// CRI's annotations by which runsc places a container in a sandbox
// (gvisor.dev/gvisor/runsc/specutils: ContainerdContainerTypeAnnotation,
// ContainerdSandboxIDAnnotation).
const (
	AnnotationContainerType = specutils.ContainerdContainerTypeAnnotation
	AnnotationSandboxID     = specutils.ContainerdSandboxIDAnnotation
	ContainerTypeSandbox    = specutils.ContainerdContainerTypeSandbox
	ContainerTypeContainer  = specutils.ContainerdContainerTypeContainer
)

// runsc state's status values (gvisor.dev/gvisor/runsc/container.Status
// as `runsc state` prints it).
const (
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusStopped = "stopped"
)

// The per-sandbox network flag and its values.
const (
	FlagNetwork = "network"
	NetworkHost = "host"
	NetworkNone = "none"
)

// Exit statuses shimless reports for exits nobody saw.
const (
	// ExitUnknown: the process ended while nobody watched (its sandbox
	// died, or containerd was down).
	ExitUnknown = 255
	// ExitKilled: SIGKILL's 128+9, for a sandbox killed with its
	// containers (OOM, or a forced teardown).
	ExitKilled = 128 + 9
)

// WaitExit is the one exit-wait loop: it calls wait until the process's
// exit is answered and returns its exit code with seen set. A failed wait
// (the control socket not answering) is retried while the sandbox lives:
// gone reports, blocking for up to a retry interval, whether the sandbox
// (or whatever the caller also watches) has ended; then WaitExit returns
// with seen false. It returns with seen false when ctx ends as well.
func WaitExit(ctx context.Context, wait func(context.Context) (unix.WaitStatus, error), gone func(context.Context) bool, onRetry func(error)) (code uint32, seen bool) {
	for {
		ws, err := wait(ctx)
		if ctx.Err() != nil {
			return 0, false
		}
		if err == nil {
			return ExitCode(ws), true
		}
		if gone(ctx) || ctx.Err() != nil {
			return 0, false
		}
		if onRetry != nil {
			onRetry(err)
		}
	}
}
