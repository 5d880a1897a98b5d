package runtime

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"

	"github.com/shimless/shimless/sandbox"
)

// Runtime is the in-process runsc task runtime: containers and execs
// inside runsc sandboxes, without a shim.
type Runtime struct {
	sandboxes *sandbox.Controller
}

var _ runtime.PlatformRuntime = (*Runtime)(nil)

// New returns the task view of the controller's sandboxes.
func New(c *sandbox.Controller) *Runtime { return &Runtime{sandboxes: c} }

// ID names the runtime in logs and plugin listings.
func (r *Runtime) ID() string { return plugins.RuntimePluginV2.String() + ".runsc" }

// Create creates a task in a runsc sandbox.
func (r *Runtime) Create(ctx context.Context, taskID string, opts runtime.CreateOpts) (runtime.Task, error) {
	return nil, fmt.Errorf("runsc task %s: in-process runsc tasks: %w", taskID, errdefs.ErrNotImplemented)
}

// Get returns a runsc task.
func (r *Runtime) Get(ctx context.Context, taskID string) (runtime.Task, error) {
	return nil, fmt.Errorf("runsc task %s: %w", taskID, errdefs.ErrNotFound)
}

// Tasks lists runsc tasks.
func (r *Runtime) Tasks(ctx context.Context, all bool) ([]runtime.Task, error) {
	return nil, nil
}

// Delete deletes a runsc task.
func (r *Runtime) Delete(ctx context.Context, taskID string) (*runtime.Exit, error) {
	return nil, fmt.Errorf("runsc task %s: %w", taskID, errdefs.ErrNotFound)
}
