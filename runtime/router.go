// Package runtime holds shimless's task side: the Router that containerd's
// tasks service talks to, and the in-process runsc task runtime behind it.
package runtime

import (
	"context"
	"fmt"
	"strings"

	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
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

// Create routes by the container's sandbox and runtime name.
//
// runc's task option type (containerd.runc.v1.Options, which CRI fills with
// IoUid/IoGid for user-namespaced pods for every runtime) reaches only
// runc. The runsc runtime gets the IO owner as plain data; any other
// runtime gets no runc-typed task options at all (they would fail with
// `unsupported option type "containerd.runc.v1.Options"`).
func (r *Router) Create(ctx context.Context, taskID string, opts runtime.CreateOpts) (runtime.Task, error) {
	runcOpts, err := runcTaskOptions(opts.TaskOptions)
	if err != nil {
		return nil, err
	}
	if r.isRunsc(opts) {
		var owner *IOOwner
		if runcOpts != nil {
			if runcOpts.IoUid != 0 || runcOpts.IoGid != 0 {
				owner = &IOOwner{UID: runcOpts.IoUid, GID: runcOpts.IoGid}
			}
			opts.TaskOptions = nil
		}
		if rt, ok := r.runsc.(*Runtime); ok {
			return rt.CreateOwned(ctx, taskID, opts, owner)
		}
		return r.runsc.Create(ctx, taskID, opts)
	}
	if runcOpts != nil && !isRuncRuntime(opts.Runtime) {
		opts.TaskOptions = nil
	}
	return r.stock.Create(ctx, taskID, opts)
}

// runcTaskOptions decodes task options of runc's type; nil for none or
// another type.
func runcTaskOptions(a typeurl.Any) (*options.Options, error) {
	if a == nil || a.GetTypeUrl() == "" {
		return nil, nil
	}
	if !typeurl.Is(a, &options.Options{}) {
		return nil, nil
	}
	var o options.Options
	if err := typeurl.UnmarshalTo(a, &o); err != nil {
		return nil, fmt.Errorf("task options: %w", err)
	}
	return &o, nil
}

// isRuncRuntime reports whether a runtime name is containerd's runc shim.
func isRuncRuntime(name string) bool {
	return strings.HasPrefix(name, "io.containerd.runc.") || strings.HasSuffix(name, "containerd-shim-runc-v2")
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
