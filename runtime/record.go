package runtime

import (
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/core/runtime"

	"github.com/shimless/shimless/sandbox"
)

// writeJSON writes a record atomically (a variable for fault injection).
var writeJSON = sandbox.WriteJSONAtomic

// taskRecord is a task's persisted state (task.json in its directory). It
// is written before containerd learns of the task (Create) and after each
// transition; recovery rebuilds the Task from it.
type taskRecord struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	SandboxID string `json:"sandboxId"`
	// Root: the task is its sandbox's root container (sandbox.KindRoot);
	// InRoot: it joined such a sandbox (a gVisor-shim style pod's
	// container); Private: it owns a private sandbox (sandbox.KindPrivate).
	Root       bool           `json:"root"`
	InRoot     bool           `json:"inRoot,omitempty"`
	Private    bool           `json:"private,omitempty"`
	Cgroups    string         `json:"cgroups,omitempty"`
	TTYIndex   int            `json:"ttyIndex"`
	TTYHolder  int            `json:"ttyHolder,omitempty"`
	IO         runtime.IO     `json:"io"`
	Status     runtime.Status `json:"status"`
	Pid        uint32         `json:"pid"`
	ExitStatus uint32         `json:"exitStatus"`
	ExitedAt   time.Time      `json:"exitedAt,omitzero"`
	Flags      map[string]string
	// RunscRoot is the runsc root of the task's sandbox when it is not the
	// shared one (a standalone container's private sandbox).
	RunscRoot string `json:"runscRoot,omitempty"`
	// Deferred: runsc has not created the container yet (a plain
	// container is created and started by one runsc run at Start).
	Deferred bool `json:"deferred,omitempty"`
	// MemoryLimit is the container's memory limit (0: none); its sandbox's
	// limit follows its containers' (sandbox.Handle.SetMemoryLimit).
	MemoryLimit int64 `json:"memoryLimit,omitempty"`
}

// kind is the kind of the task's sandbox.
func (r *taskRecord) kind() sandbox.Kind {
	switch {
	case r.Root, r.InRoot:
		return sandbox.KindRoot
	case r.Private:
		return sandbox.KindPrivate
	}
	return sandbox.KindPod
}

// persist writes the task's record. Writes are serialised and each takes
// its snapshot under recMu, so the last write carries the latest state.
func (t *Task) persist() error {
	t.recMu.Lock()
	defer t.recMu.Unlock()
	t.mu.Lock()
	rec := taskRecord{
		ID: t.id, Namespace: t.ns, SandboxID: t.sb.ID(), Root: t.sb.IsRoot(t.id), InRoot: t.sb.Kind() == sandbox.KindRoot && !t.sb.IsRoot(t.id), Private: t.sb.Kind() == sandbox.KindPrivate,
		Cgroups: t.cgroups, TTYIndex: t.ttyIndex, TTYHolder: t.ttyHolder, IO: t.io,
		Status: t.status, Pid: t.pid, ExitStatus: t.exitStatus, ExitedAt: t.exitedAt,
		Flags: t.sb.Runsc().FlagSet(), RunscRoot: t.sb.RunscRoot(), MemoryLimit: t.memLimit,
		Deferred: t.deferred,
	}
	t.mu.Unlock()
	return writeJSON(filepath.Join(t.dir, "task.json"), rec)
}
