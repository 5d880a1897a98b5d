package telemetry

import (
	"context"
	"time"

	"github.com/containerd/containerd/v2/pkg/tracing"
)

// Span names. Sandbox and task spans are children of the caller's span
// (CRI's, or the gRPC request's); runsc spans are children of those.
const (
	spanSandbox = "shimless.sandbox"
	spanTask    = "shimless.task"
	spanRunsc   = "runsc"
)

// Done ends an observed operation with its result.
type Done func(err error)

// SandboxOp observes one sandbox controller operation: a span
// "shimless.sandbox.<op>", its latency, and on failure a failure count.
func SandboxOp(ctx context.Context, op, id string) (context.Context, Done) {
	ctx, span := tracing.StartSpan(ctx, tracing.Name(spanSandbox, op),
		tracing.WithAttribute("sandbox.id", id))
	begin := time.Now()
	return ctx, func(err error) {
		observeSandboxOp(op, begin)
		if err != nil {
			Failure(op, err)
		}
		span.SetStatus(err)
		span.End()
	}
}

// TaskOp observes one task runtime operation (create, start, exec, kill,
// delete): a span "shimless.task.<op>". Failures of create, start and
// exec start are counted by their phase; exec start latency is recorded.
func TaskOp(ctx context.Context, op, ns, id, execID string) (context.Context, Done) {
	opts := []tracing.SpanOpt{
		tracing.WithAttribute("task.namespace", ns),
		tracing.WithAttribute("task.id", id),
	}
	if execID != "" {
		opts = append(opts, tracing.WithAttribute("exec.id", execID))
	}
	ctx, span := tracing.StartSpan(ctx, tracing.Name(spanTask, op), opts...)
	begin := time.Now()
	return ctx, func(err error) {
		var phase string
		switch op {
		case "create":
			phase = PhaseTaskCreate
		case "start":
			phase = PhaseTaskStart
		case "exec_start":
			phase = PhaseExecStart
			observeExecStart(begin)
		}
		if err != nil && phase != "" {
			Failure(phase, err)
		}
		span.SetStatus(err)
		span.End()
	}
}

// RunscCall observes one runsc invocation of kind (KindCLI or KindRPC) and
// verb: a span "runsc.<verb>" and its latency. A call that ends because
// its context was cancelled (a wait given up) is not an error.
func RunscCall(ctx context.Context, kind, verb, id string) (context.Context, Done) {
	ctx, span := tracing.StartSpan(ctx, tracing.Name(spanRunsc, verb),
		tracing.WithAttribute("runsc.kind", kind),
		tracing.WithAttribute("runsc.id", id))
	begin := time.Now()
	return ctx, func(err error) {
		failed := err != nil && ctx.Err() == nil
		observeRunsc(kind, verb, begin, failed)
		if failed {
			span.SetStatus(err)
		}
		span.End()
	}
}
