package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/shimless/shimless/sandbox"
	"github.com/shimless/shimless/telemetry"
)

// Runtime is the in-process runsc task runtime: containers and execs
// inside runsc sandboxes, without a shim. Every container is a Task with
// its own state, pid and exit status; nothing is shared between a pod's
// containers but the sandbox they run in.
type Runtime struct {
	sandboxes *sandbox.Controller
	dir       string // per-namespace task state: bundles, records

	mu    sync.Mutex // guards tasks; never held across runsc calls
	tasks map[string]*Task

	featuresMu sync.Mutex
	features   *features.Features // runsc's, once it answered
}

var _ runtime.PlatformRuntime = (*Runtime)(nil)

// New returns the task view of the controller's sandboxes, with its state
// under dir, and re-attaches to the tasks recorded there.
func New(ctx context.Context, c *sandbox.Controller, dir string) (*Runtime, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	r := &Runtime{sandboxes: c, dir: dir, tasks: map[string]*Task{}}
	r.recover(ctx)
	c.SetOOMHook(r.sandboxOOM)
	return r, nil
}

// ID names the runtime in logs and plugin listings.
func (r *Runtime) ID() string { return plugins.RuntimePluginV2.String() + ".runsc" }

func key(ns, id string) string { return ns + "/" + id }

func (r *Runtime) get(ctx context.Context, id string) (*Task, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tasks[key(ns, id)]
	if !ok || t.creating {
		return nil, fmt.Errorf("runsc task %s: %w", id, errdefs.ErrNotFound)
	}
	return t, nil
}

// Get returns a runsc task.
func (r *Runtime) Get(ctx context.Context, id string) (runtime.Task, error) {
	t, err := r.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Tasks lists runsc tasks of the context's namespace (all namespaces when
// all is set).
func (r *Runtime) Tasks(ctx context.Context, all bool) ([]runtime.Task, error) {
	ns, _ := namespaces.Namespace(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.Task
	for _, t := range r.tasks {
		if !t.creating && (all || t.ns == ns) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Delete deletes a stopped (or never started) task and everything of it.
func (r *Runtime) Delete(ctx context.Context, id string) (_ *runtime.Exit, retErr error) {
	t, err := r.get(ctx, id)
	if err != nil {
		return nil, err
	}
	ctx, done := telemetry.TaskOp(ctx, "delete", t.ns, id, "")
	defer func() { done(retErr) }()
	exit, err := t.delete(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	delete(r.tasks, key(t.ns, id))
	r.mu.Unlock()
	return exit, nil
}

// taskDir is where a task's bundle and record live.
func (r *Runtime) taskDir(ns, id string) string {
	return filepath.Join(r.dir, ns, id)
}

// PluginInfo describes the runsc runtime for CRI's handler feature probe
// with the features runsc itself advertises (`runsc features`).
func (r *Runtime) PluginInfo(ctx context.Context, request any) (any, error) {
	// Only a success is cached: a failure (runsc busy, a timeout) is asked
	// again next time.
	r.featuresMu.Lock()
	features := r.features
	if features == nil {
		fs, err := r.sandboxes.Runsc().Features(ctx)
		if err != nil {
			r.featuresMu.Unlock()
			return nil, err
		}
		// gVisor's read-only mounts are recursive: offer rro (the
		// spec's "rro" becomes runsc's "ro", see recursiveReadOnly).
		cp := *fs
		cp.MountOptions = withRRO(fs.MountOptions)
		r.features, features = &cp, &cp
	}
	r.featuresMu.Unlock()
	f, err := typeurl.MarshalAnyToProto(features)
	if err != nil {
		return nil, err
	}
	return &apitypes.RuntimeInfo{
		Name:     RunscRuntimeType,
		Version:  &apitypes.RuntimeVersion{Version: r.sandboxes.RunscVersion()},
		Features: f,
	}, nil
}

// rootTask returns the task that is the root container of sandboxID (a
// gVisor-shim style pod's pause container), or nil.
func (r *Runtime) rootTask(ns, sandboxID string) *Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tasks[key(ns, sandboxID)]
	if !ok || t.creating || !t.root {
		return nil
	}
	return t
}

// sandboxTasks returns the tasks that run in sandboxID, its root included.
// Sandbox ids are unique across namespaces: they are runsc ids under one
// root.
func (r *Runtime) sandboxTasks(sandboxID string) []*Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Task
	for _, t := range r.tasks {
		if !t.creating && t.sb.ID() == sandboxID {
			out = append(out, t)
		}
	}
	return out
}
