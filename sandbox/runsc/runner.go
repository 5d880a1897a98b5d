package runsc

import (
	"context"
	"net"
	"os"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// Runner is the seam between shimless and runsc: every runsc operation the
// sandbox controller and the task runtime use. *Client implements it with
// the real runsc (CLI and control socket); unit tests drive the lifecycle,
// and every fault of it, with a fake (package runscfake).
type Runner interface {
	// For returns the runner for one sandbox: its own global flags added.
	For(flags map[string]string) Runner
	// WithRoot returns the runner under another runsc root.
	WithRoot(root string) Runner
	// RootDir is runsc's --root; FlagSet the global flags (do not modify).
	RootDir() string
	FlagSet() map[string]string
	// DebugLogHint names where runsc's debug logs are, for errors.
	DebugLogHint() string

	Version(ctx context.Context) (string, error)
	Features(ctx context.Context) (*features.Features, error)

	// The CLI: containers and sandboxes.
	Create(ctx context.Context, id, bundle string, opts CreateOptions) error
	Start(ctx context.Context, id string, stdio runc.IO) error
	// Run is Create and Start in one runsc process (runsc run --detach).
	Run(ctx context.Context, id, bundle string, opts CreateOptions) error
	State(ctx context.Context, id string) (*Container, error)
	Delete(ctx context.Context, id string) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Ps(ctx context.Context, id string) ([]int, error)
	Stats(ctx context.Context, sandboxID, cid string) (*runc.Stats, error)
	Update(ctx context.Context, id string, res *specs.LinuxResources) error

	// The sandbox's control socket.
	// Kill signals a container's init, or with all every process of it;
	// KillPid one process of it (its pid inside the sandbox).
	Kill(ctx context.Context, sandboxID, id string, sig unix.Signal, all bool) error
	KillPid(ctx context.Context, sandboxID, id string, pid int, sig unix.Signal) error
	WaitContainer(ctx context.Context, sandboxID, cid string) (unix.WaitStatus, error)
	WaitPID(ctx context.Context, sandboxID, cid string, pid int) (unix.WaitStatus, error)
	Exec(ctx context.Context, sandboxID, cid string, proc specs.Process, stdio IO) (int, error)
	ExecWithFiles(ctx context.Context, sandboxID, cid string, proc specs.Process, stdio IO, extra map[int]*os.File) (int, error)
	PortForward(ctx context.Context, sandboxID, cid string, port uint16) (net.Conn, error)

	// runsc's files under the root, read without running runsc.
	SandboxProcesses(sandboxID string) []int
	Containers(sandboxID string) []string
	ReleaseSharedMounts()
}

var _ Runner = (*Client)(nil)
