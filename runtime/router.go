// Package runtime holds shimless's task side: the Router that containerd's
// tasks service talks to, and the in-process runsc task runtime behind it.
package runtime

import (
	"context"
	"fmt"

	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
)

// RunscRuntimeType is the runtime_type of gVisor handlers; containers
// created with it are runsc tasks even outside a runsc sandbox.
const RunscRuntimeType = "io.containerd.runsc.v1"

// Owner tells whether a task belongs to the in-process runsc runtime.
type Owner interface {
	// OwnsSandbox reports whether sandboxID is a runsc sandbox.
	OwnsSandbox(sandboxID string) bool
}

// Router is the "task" runtime containerd's tasks service sees. It sends
// runsc tasks to the in-process runtime and every other task to the stock
// shim TaskManager, untouched.
type Router struct {
	stock runtime.PlatformRuntime
	runsc runtime.PlatformRuntime // nil when the runsc plugins are skipped
	owner Owner
}

var _ runtime.PlatformRuntime = (*Router)(nil)

// NewRouter wraps stock. runsc and owner may be nil: then every call is
// delegated to stock.
func NewRouter(stock, runsc runtime.PlatformRuntime, owner Owner) *Router {
	if runsc == nil || owner == nil {
		runsc, owner = nil, nil
	}
	return &Router{stock: stock, runsc: runsc, owner: owner}
}

// ID is the stock runtime's id: clients and metrics know the task runtime
// by it.
func (r *Router) ID() string { return r.stock.ID() }

// isRunsc decides where a new task goes.
func (r *Router) isRunsc(opts runtime.CreateOpts) bool {
	if r.runsc == nil {
		return false
	}
	if opts.SandboxID != "" && r.owner.OwnsSandbox(opts.SandboxID) {
		return true
	}
	return opts.Runtime == RunscRuntimeType
}

// Create routes by the container's sandbox and runtime name. Stock tasks
// go to the stock runtime untouched. runsc tasks take no task options: the
// runtime derives what it needs (the IO owner of a user-namespaced pod)
// from the container's spec. containerd's CRI is patched to send runc's
// IO-ownership options to runc only (patches/containerd/0001).
func (r *Router) Create(ctx context.Context, taskID string, opts runtime.CreateOpts) (runtime.Task, error) {
	if r.isRunsc(opts) {
		opts.TaskOptions = nil
		return r.runsc.Create(ctx, taskID, opts)
	}
	return r.stock.Create(ctx, taskID, opts)
}

// Get asks the runsc runtime first, then the stock one.
func (r *Router) Get(ctx context.Context, taskID string) (runtime.Task, error) {
	if r.runsc != nil {
		t, err := r.runsc.Get(ctx, taskID)
		if err == nil {
			return t, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, err
		}
	}
	return r.stock.Get(ctx, taskID)
}

// Tasks is the union of both runtimes' tasks.
func (r *Router) Tasks(ctx context.Context, all bool) ([]runtime.Task, error) {
	tasks, err := r.stock.Tasks(ctx, all)
	if err != nil {
		return nil, err
	}
	if r.runsc != nil {
		ours, err := r.runsc.Tasks(ctx, all)
		if err != nil {
			return nil, fmt.Errorf("runsc tasks: %w", err)
		}
		tasks = append(tasks, ours...)
	}
	return tasks, nil
}

// Delete deletes from whichever runtime has the task.
func (r *Router) Delete(ctx context.Context, taskID string) (*runtime.Exit, error) {
	if r.runsc != nil {
		exit, err := r.runsc.Delete(ctx, taskID)
		if err == nil || !errdefs.IsNotFound(err) {
			return exit, err
		}
	}
	return r.stock.Delete(ctx, taskID)
}

// pluginInfoProvider is what containerd's introspection service asks the
// "task" plugin instance for runtime features.
type pluginInfoProvider interface {
	PluginInfo(ctx context.Context, request any) (any, error)
}

// PluginInfo answers for the runsc runtime type itself and delegates every
// other runtime to the stock TaskManager (which runs `<shim> -info`).
func (r *Router) PluginInfo(ctx context.Context, request any) (any, error) {
	if r.runsc != nil && runtimePathOf(request) == RunscRuntimeType {
		if p, ok := r.runsc.(pluginInfoProvider); ok {
			return p.PluginInfo(ctx, request)
		}
	}
	p, ok := r.stock.(pluginInfoProvider)
	if !ok {
		return nil, fmt.Errorf("task runtime %s has no plugin info: %w", r.stock.ID(), errdefs.ErrNotImplemented)
	}
	return p.PluginInfo(ctx, request)
}

// runtimePathOf returns the runtime a PluginInfo request asks about.
func runtimePathOf(request any) string {
	if req, ok := request.(*apitypes.RuntimeRequest); ok {
		return req.RuntimePath
	}
	return ""
}
