package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/telemetry"

	"github.com/shimless/shimless/sandbox/runsc"
)

// State is a sandbox's lifecycle state. Legal transitions:
//
//	created -> running   (Start)
//	running -> stopped   (its root container exited, or Stop)
//	created|stopped -> deleted (Shutdown)
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateStopped State = "stopped"
	StateDeleted State = "deleted"
)

// ExitUnknown is reported for a sandbox that died while containerd was not
// watching it.
const ExitUnknown = runsc.ExitUnknown

// exitForced is reported for a sandbox that had to be killed by force.
const exitForced = runsc.ExitKilled

// record is a sandbox's persisted state. It is written atomically after
// every transition; recovery rebuilds the Sandbox from it.
type record struct {
	ID          string            `json:"id"`
	Namespace   string            `json:"namespace"`
	State       State             `json:"state"`
	Labels      map[string]string `json:"labels,omitempty"`
	Config      []byte            `json:"config,omitempty"` // protobuf PodSandboxConfig
	NetNSPath   string            `json:"netnsPath,omitempty"`
	HostNetwork bool              `json:"hostNetwork,omitempty"`
	CgroupsPath string            `json:"cgroupsPath,omitempty"`
	// SandboxCgroup is where the sandbox's processes and limits live: the
	// pod cgroup parent when there is one (runsc's cgroup-parent
	// annotation), else CgroupsPath.
	SandboxCgroup string            `json:"sandboxCgroup,omitempty"`
	Flags         map[string]string `json:"flags,omitempty"`
	// RunscRoot is the sandbox's own runsc root; "" means the shared one.
	// A standalone container's private sandbox has its own: runsc resolves
	// container ids by prefix, so "web" would be ambiguous beside "web2"
	// under one root.
	RunscRoot  string    `json:"runscRoot,omitempty"`
	Pid        uint32    `json:"pid,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	ExitedAt   time.Time `json:"exitedAt,omitzero"`
	ExitStatus uint32    `json:"exitStatus"`
}

// Sandbox is one pod sandbox: a runsc sandbox whose root container runs
// shimless-pause. It owns its record and its lock; the controller's map
// lock is never held across runsc calls.
type Sandbox struct {
	// op serialises lifecycle operations (Start, Stop, Shutdown) on this
	// sandbox; it may be held across runsc calls.
	op sync.Mutex

	mu      sync.Mutex // guards rec, fate, corrupt
	rec     record
	fate                  // how it died: killed by force, OOM-killed
	corrupt bool          // its record was unreadable at recovery (kept NOTREADY)
	mem     *podMemory    // its containers' memory limits (see memory.go)
	exited  chan struct{} // closed once the sandbox has exited
	// stopMonitor ends the exit monitor (on Shutdown or controller close).
	stopMonitor context.CancelFunc
	// released: runsc's state of the exited sandbox has been deleted (by
	// Stop; Shutdown then has nothing left to ask runsc). Guarded by op.
	released bool

	recordPath string
	bundle     string // runsc bundle: config.json and runsc's output
}

func newSandbox(rec record, recordPath, bundle string) *Sandbox {
	s := &Sandbox{rec: rec, exited: make(chan struct{}), recordPath: recordPath, bundle: bundle}
	if rec.State == StateStopped || rec.State == StateDeleted {
		close(s.exited)
	}
	if rec.State == StateRunning {
		telemetry.SandboxRunning() // recovered
	}
	return s
}

// fate says how a sandbox died, beyond its exit status: its containers'
// exits, which nobody saw, read as SIGKILL's 137 when it was killed.
type fate struct {
	forced    bool // its process tree had to be killed
	oomKilled bool // the kernel OOM-killed in the sandbox cgroup
	// oomConfirm asks the sandbox cgroup's oom_kill counter (see watchOOM).
	oomConfirm func() bool
}

// read reports an OOM kill and a forced kill. The exit can be seen before
// the OOM event: the counter is asked. The owner's lock is held.
func (f *fate) read() (oom, forced bool) {
	if !f.oomKilled && f.oomConfirm != nil && f.oomConfirm() {
		f.oomKilled = true
	}
	return f.oomKilled, f.forced
}

// snapshot returns a copy of the record.
func (s *Sandbox) snapshot() record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// podConfig decodes the CRI pod config kept in the record.
func (r *record) podConfig() (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{}
	if len(r.Config) == 0 {
		return cfg, nil
	}
	if err := proto.Unmarshal(r.Config, cfg); err != nil {
		return nil, fmt.Errorf("sandbox %s: decode pod config: %w", r.ID, err)
	}
	return cfg, nil
}

// transition moves the sandbox to next, enforcing the state machine, and
// persists the record. update may change other fields.
func (s *Sandbox) transition(next State, update func(*record)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.rec.State
	legal := map[State][]State{
		StateCreated: {StateRunning, StateDeleted},
		StateRunning: {StateStopped},
		StateStopped: {StateDeleted},
	}
	ok := false
	for _, st := range legal[cur] {
		ok = ok || st == next
	}
	if !ok {
		return fmt.Errorf("sandbox %s is %s, cannot become %s: %w", s.rec.ID, cur, next, errdefs.ErrFailedPrecondition)
	}
	rec := s.rec
	rec.State = next
	if update != nil {
		update(&rec)
	}
	var werr error
	if next != StateDeleted {
		if werr = writeRecord(s.recordPath, rec); werr != nil && next != StateStopped {
			return werr
		}
		// An exit is a fact, not a request: it is applied (and its
		// waiters woken) even when its record cannot be written (a full
		// disk). Recovery rolls the record forward from the dead pid.
	}
	s.rec = rec
	if next == StateRunning {
		telemetry.SandboxRunning()
	} else if cur == StateRunning {
		telemetry.SandboxNotRunning()
	}
	// exited closes on the first move out of created/running: a sandbox
	// shut down without ever running has "exited" for its waiters too.
	if next == StateStopped || (next == StateDeleted && cur == StateCreated) {
		close(s.exited)
	}
	return werr
}

// writeRecord writes rec to path atomically.
func writeRecord(path string, rec record) error {
	if err := WriteJSONAtomic(path, rec); err != nil {
		return fmt.Errorf("write sandbox record %s: %w", path, err)
	}
	return nil
}

// WriteJSONAtomic writes v as JSON to path atomically (temp file in the
// same directory, fsync, rename): a crash leaves the old file or the new
// one, never a torn one. The task runtime's records use it too.
func WriteJSONAtomic(path string, v any) error {
	return writeJSONAtomic(path, v)
}

// tempRecordPrefix names WriteJSONAtomic's temporary files; a crash between
// their creation and the rename leaves one behind.
const tempRecordPrefix = ".record-"

// RemoveTempRecords removes what WriteJSONAtomic left in dir when
// containerd died during a write (recovery: nothing writes yet).
func RemoveTempRecords(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, tempRecordPrefix+"*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), tempRecordPrefix+"*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readRecord(path string) (record, error) {
	var rec record
	data, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("sandbox record %s: %w", path, err)
	}
	return rec, nil
}
