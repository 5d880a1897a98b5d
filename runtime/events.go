package runtime

import (
	"context"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The one event path: every task event is published here, in containerd's
// topics, in this order for a task:
//
//	create, start (before the exit watch starts), exec-added/exec-started,
//	exec exits (before their init's exit), oom (before the exit it caused),
//	exit (before Wait returns), delete (once).

// publish publishes one event in the task's namespace.
func (t *Task) publish(ctx context.Context, topic string, ev events.Event) {
	ctx = namespaces.WithNamespace(context.WithoutCancel(ctx), t.ns)
	if err := t.rt.sandboxes.Publisher().Publish(ctx, topic, ev); err != nil {
		log.G(ctx).WithError(err).WithField("container", t.id).Warnf("publish %s", topic)
	}
}

func (t *Task) publishCreate(ctx context.Context) {
	t.publish(ctx, runtime.TaskCreateEventTopic, &eventstypes.TaskCreate{
		ContainerID: t.id, Bundle: t.dir, Pid: t.pid,
		IO: &eventstypes.TaskIO{Stdin: t.io.Stdin, Stdout: t.io.Stdout, Stderr: t.io.Stderr, Terminal: t.io.Terminal},
	})
}

func (t *Task) publishStart(ctx context.Context, pid uint32) {
	t.publish(ctx, runtime.TaskStartEventTopic, &eventstypes.TaskStart{ContainerID: t.id, Pid: pid})
}

// publishOOM publishes the task's OOM event, once.
func (t *Task) publishOOM(ctx context.Context) {
	t.mu.Lock()
	done := t.oomPublished
	t.oomPublished = true
	t.mu.Unlock()
	if !done {
		t.publish(ctx, runtime.TaskOOMEventTopic, &eventstypes.TaskOOM{ContainerID: t.id})
	}
}

// publishExit publishes the init's exit. An OOM kill of the sandbox that
// the exit watch saw first (the cgroup's counter confirms it) is published
// before it, so that CRI reports OOMKilled.
func (t *Task) publishExit(ctx context.Context, exit *runtime.Exit) {
	if exit.Status == exitKilled && t.sb.OOMKilled() {
		t.publishOOM(ctx)
	}
	t.publish(ctx, runtime.TaskExitEventTopic, &eventstypes.TaskExit{
		ContainerID: t.id, ID: t.id, Pid: exit.Pid, ExitStatus: exit.Status, ExitedAt: timestamppb.New(exit.Timestamp),
	})
}

func (t *Task) publishDelete(ctx context.Context, exit *runtime.Exit) {
	t.publish(ctx, runtime.TaskDeleteEventTopic, &eventstypes.TaskDelete{
		ContainerID: t.id, ID: t.id, Pid: exit.Pid, ExitStatus: exit.Status, ExitedAt: timestamppb.New(exit.Timestamp),
	})
}

func (t *Task) publishPaused(ctx context.Context) {
	t.publish(ctx, runtime.TaskPausedEventTopic, &eventstypes.TaskPaused{ContainerID: t.id})
}

func (t *Task) publishResumed(ctx context.Context) {
	t.publish(ctx, runtime.TaskResumedEventTopic, &eventstypes.TaskResumed{ContainerID: t.id})
}

func (t *Task) publishExecAdded(ctx context.Context, execID string) {
	t.publish(ctx, runtime.TaskExecAddedEventTopic, &eventstypes.TaskExecAdded{ContainerID: t.id, ExecID: execID})
}

func (t *Task) publishExecStarted(ctx context.Context, execID string, pid uint32) {
	t.publish(ctx, runtime.TaskExecStartedEventTopic, &eventstypes.TaskExecStarted{ContainerID: t.id, ExecID: execID, Pid: pid})
}

func (t *Task) publishExecExit(ctx context.Context, execID string, exit *runtime.Exit) {
	t.publish(ctx, runtime.TaskExitEventTopic, &eventstypes.TaskExit{
		ContainerID: t.id, ID: execID, Pid: exit.Pid, ExitStatus: exit.Status, ExitedAt: timestamppb.New(exit.Timestamp),
	})
}

// sandboxOOM is the controller's OOM hook: an OOM kill in a sandbox's
// cgroup. Under runsc the host OOM killer can only kill the sandbox, which
// takes all of its containers with it: each running task publishes OOM.
func (r *Runtime) sandboxOOM(sandboxID string) {
	for _, t := range r.sandboxTasks(sandboxID) {
		t.mu.Lock()
		running := t.status == runtime.RunningStatus || t.status == runtime.PausedStatus
		t.mu.Unlock()
		if running {
			t.publishOOM(r.sandboxes.Context())
		}
	}
}
