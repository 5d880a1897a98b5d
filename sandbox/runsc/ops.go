package runsc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/control/client"
	"gvisor.dev/gvisor/pkg/sentry/control"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/shim/v1/runsccmd"
	"gvisor.dev/gvisor/pkg/urpc"
	"gvisor.dev/gvisor/runsc/specutils"

	"github.com/shimless/shimless/telemetry"
)

// Deadlines of runsc invocations. Create/start boot a sandbox; everything
// else is a quick RPC to a running one, so a hung sandbox cannot block the
// caller for long.
const (
	CreateTimeout = 60 * time.Second
	CallTimeout   = 10 * time.Second
)

// ErrNotExist is returned when runsc has no such container.
var ErrNotExist = errors.New("runsc: container does not exist")

// Container is runsc's view of one container.
type Container = runc.Container

// For returns a client for one sandbox: the same binary and root, with the
// sandbox's own global flags (e.g. network=host) added. runsc reads those
// flags on every invocation, not only at create.
func (c *Client) For(flags map[string]string) Runner {
	if len(flags) == 0 {
		return c
	}
	cp := *c
	cp.Flags = maps.Clone(c.Flags)
	if cp.Flags == nil {
		cp.Flags = map[string]string{}
	}
	maps.Copy(cp.Flags, flags)
	return &cp
}

// WithRoot returns a copy of the client that runs runsc under root.
func (c *Client) WithRoot(root string) Runner {
	cp := *c
	cp.Root = root
	return &cp
}

// RootDir is runsc's --root.
func (c *Client) RootDir() string { return c.Root }

// FlagSet is the client's global flags.
func (c *Client) FlagSet() map[string]string { return c.Flags }

// DebugLogHint names where runsc's debug logs are, for error messages.
func (c *Client) DebugLogHint() string {
	if c.DebugLogDir == "" {
		return "set debug_log_dir in the runsc plugin config for runsc debug logs"
	}
	return "runsc debug logs are in " + c.DebugLogDir
}

// CreateOptions are the settings of one `runsc create`.
type CreateOptions struct {
	// Stdio is handed to runsc create; Out and Err default to OutputPath.
	Stdio IO
	// OutputPath receives runsc's own error output (and stdio not given).
	OutputPath string
	// UserLog makes runsc also write its user-visible log to OutputPath.
	UserLog bool
	// ConsoleSocket, when not nil, receives the pty master of a TTY
	// container.
	ConsoleSocket runc.ConsoleSocket
	// PidFile, when set, receives the sandbox process's pid (runsc create
	// --pid-file): no `runsc state` is needed to learn it.
	PidFile string
}

// stdio is the create's stdio with OutputPath, opened for appending, in
// place of a missing stdout or stderr; close releases that file.
func (o CreateOptions) stdio() (_ IO, close func(), _ error) {
	stdio := o.Stdio
	if stdio.Err != nil && stdio.Out != nil {
		return stdio, func() {}, nil
	}
	f, err := os.OpenFile(o.OutputPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return IO{}, nil, err
	}
	if stdio.Err == nil {
		stdio.Err = f
	}
	if stdio.Out == nil {
		stdio.Out = f
	}
	return stdio, func() { f.Close() }, nil
}

// ReadPidFile reads a pid file runsc wrote.
func ReadPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, data)
	}
	return pid, nil
}

// Create runs `runsc create` for bundle: a sandbox's root container, or a
// container that joins its sandbox (the spec carries the CRI sandbox
// annotations). Its error carries runsc's error output.
func (c *Client) Create(ctx context.Context, id, bundle string, opts CreateOptions) (retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "create", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CreateTimeout)
	defer cancel()
	stdio, closeOutput, err := opts.stdio()
	if err != nil {
		return err
	}
	defer closeOutput()
	ro := &runsccmd.CreateOpts{IO: stdio, ConsoleSocket: opts.ConsoleSocket, PidFile: opts.PidFile}
	if opts.UserLog {
		ro.UserLog = opts.OutputPath
	}
	if err := c.cmd().Create(ctx, id, bundle, ro); err != nil {
		out, _ := os.ReadFile(opts.OutputPath)
		return fmt.Errorf("runsc create %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Run creates and starts a container in one runsc process: `runsc run
// --detach` does what `runsc create` and `runsc start` do (gVisor's
// container.Run is New then Start), one runsc start-up fewer. The options
// are Create's; a container that fails to start is destroyed by runsc
// itself, and the pid file, once written, names its sandbox process.
func (c *Client) Run(ctx context.Context, id, bundle string, opts CreateOptions) (retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "run", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CreateTimeout)
	defer cancel()
	args := append(c.globalArgs(), "run", "--detach", "--bundle", bundle)
	if opts.PidFile != "" {
		abs, err := filepath.Abs(opts.PidFile)
		if err != nil {
			return err
		}
		args = append(args, "--pid-file", abs)
	}
	if opts.ConsoleSocket != nil {
		args = append(args, "--console-socket", opts.ConsoleSocket.Path())
	}
	if opts.UserLog {
		args = append(args, "--user-log", opts.OutputPath)
	}
	cmd := exec.CommandContext(ctx, c.Path, append(args, id)...)
	// Files only (os/exec gives a nil stdin the null device): a pipe would
	// make Wait wait for the sandbox, which inherits them, to close it.
	stdio, closeOutput, err := opts.stdio()
	if err != nil {
		return err
	}
	defer closeOutput()
	stdio.Set(cmd)
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(opts.OutputPath)
		return fmt.Errorf("runsc run %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Start runs `runsc start`. A sub-container takes its stdio from this
// call (a root container from create); stdio may be nil.
func (c *Client) Start(ctx context.Context, id string, stdio runc.IO) (retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "start", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CreateTimeout)
	defer cancel()
	if err := c.cmd().Start(ctx, id, stdio); err != nil {
		return fmt.Errorf("runsc start: %w", err)
	}
	return nil
}

// State returns runsc's state of id, or ErrNotExist.
func (c *Client) State(ctx context.Context, id string) (_ *Container, retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "state", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	st, err := c.cmd().State(ctx, id)
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("%s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("runsc state %s: %w", id, err)
	}
	return st, nil
}

// List returns every container under the runsc root.
func (c *Client) List(ctx context.Context) (_ []*Container, retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "list", "")
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	l, err := c.cmd().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("runsc list: %w", err)
	}
	return l, nil
}

// Kill sends sig to the container's init (or, with all, to every process
// of the container), over the sandbox's control socket: the same
// containerManager.Signal call `runsc kill` makes after reading the state
// file, without a runsc process. A container the sandbox does not know, or
// a sandbox that is gone, is ErrNotExist; an exited process "no such
// process" (IsNoSuchProcess).
func (c *Client) Kill(ctx context.Context, sandboxID, id string, sig unix.Signal, all bool) error {
	mode := deliverToProcess
	if all {
		mode = deliverToAllProcesses
	}
	return c.signal(ctx, sandboxID, signalArgs{CID: id, Signo: int32(sig), Mode: mode})
}

// KillPid signals one process (by its pid inside the sandbox) of a
// container, as `runsc kill --pid` does.
func (c *Client) KillPid(ctx context.Context, sandboxID, id string, pid int, sig unix.Signal) error {
	if pid <= 0 {
		return fmt.Errorf("signal %d to process %d of %s: %w", sig, pid, id, errdefs.ErrInvalidArgument)
	}
	return c.signal(ctx, sandboxID, signalArgs{CID: id, Signo: int32(sig), PID: int32(pid), Mode: deliverToProcess})
}

// signalArgs mirrors gvisor.dev/gvisor/runsc/boot.SignalArgs (uRPC
// encodes by field name; vocab_test.go pins the fields).
type signalArgs struct {
	CID   string
	Signo int32
	PID   int32
	Mode  signalDeliveryMode
}

// signalDeliveryMode is runsc/boot.SignalDeliveryMode.
type signalDeliveryMode int

const (
	deliverToProcess      signalDeliveryMode = 0 // boot.DeliverToProcess
	deliverToAllProcesses signalDeliveryMode = 1 // boot.DeliverToAllProcesses
)

func (c *Client) signal(ctx context.Context, sandboxID string, args signalArgs) error {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	if err := c.rpc(ctx, sandboxID, MethodSignal, &args, nil); err != nil {
		return fmt.Errorf("signal %d to %s: %w", args.Signo, args.CID, err)
	}
	return nil
}

// Delete runs `runsc delete --force`; a container runsc does not know is
// not an error.
func (c *Client) Delete(ctx context.Context, id string) (retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "delete", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	if err := c.cmd().Delete(ctx, id, &runsccmd.DeleteOpts{Force: true}); err != nil && !isNotExist(err) {
		return fmt.Errorf("runsc delete %s: %w", id, err)
	}
	return nil
}

func isNotExist(err error) bool {
	// runsc itself could not run (a missing or broken binary): that says
	// nothing about the container.
	var pathErr *fs.PathError
	var execErr *exec.Error
	if errors.As(err, &pathErr) || errors.As(err, &execErr) {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "does not exist") || strings.Contains(s, "not found") || strings.Contains(s, "no such file or directory")
}

// ControlSocket is where runsc's sandbox serves its uRPC control API.
func (c *Client) ControlSocket(sandboxID string) string {
	return filepath.Join(c.Root, "runsc-"+sandboxID+".sock")
}

// containerManagerWait is runsc's control RPC that blocks until a
// container's init process exits (gvisor.dev/gvisor/runsc/boot.ContMgrWait).
const containerManagerWait = MethodWait

// WaitContainer blocks, in this process and without starting one, until
// container cid of sandbox sandboxID has exited, and returns its wait
// status. It returns an error when the sandbox cannot be reached or goes
// away during the call (then the caller decides from the sandbox process
// whether it exited). Cancelling ctx ends the call.
//
// A container the sandbox does not know ("container ... not found"), or a
// sandbox whose socket is gone, is ErrNotExist.
func (c *Client) WaitContainer(ctx context.Context, sandboxID, cid string) (unix.WaitStatus, error) {
	return c.call(ctx, sandboxID, containerManagerWait, &cid)
}

// call makes one blocking control RPC to a sandbox, returning a wait
// status. Cancelling ctx ends it.
func (c *Client) call(ctx context.Context, sandboxID, method string, arg any) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	err := c.rpc(ctx, sandboxID, method, arg, &ws)
	return ws, err
}

// rpc makes one control RPC to a sandbox. Cancelling ctx ends it.
func (c *Client) rpc(ctx context.Context, sandboxID, method string, arg, result any) (retErr error) {
	ctx, observed := telemetry.RunscCall(ctx, telemetry.KindRPC, method, sandboxID)
	defer func() { observed(retErr) }()
	path := c.ControlSocket(sandboxID)
	// Socket paths longer than sun_path are reached through /proc, as
	// runsc itself does.
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return notExist(ctx, fmt.Errorf("control socket of sandbox %s: %w", sandboxID, err))
	}
	conn, err := connect(ctx, fmt.Sprintf("/proc/self/fd/%d", fd))
	unix.Close(fd)
	if err != nil {
		return notExist(ctx, fmt.Errorf("connect to sandbox %s: %w", sandboxID, err))
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			// Close the socket itself: the client's Close waits for
			// the call's lock, which a sandbox that never answers
			// holds for good. Closing the socket wakes the call.
			_ = conn.Socket.Close()
		case <-done:
		}
	}()
	if err := conn.Call(method, arg, result); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return notExist(ctx, fmt.Errorf("%s in sandbox %s: %w", method, sandboxID, err))
	}
	conn.Close()
	return nil
}

// notExist marks a control RPC's error as ErrNotExist when it says the
// container is unknown to the sandbox ("container ... not found") or the
// sandbox's socket is gone. An exited process ("no such process") is not.
func notExist(ctx context.Context, err error) error {
	if ctx.Err() == nil && isNotExist(err) && !IsNoSuchProcess(err) {
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	return err
}

// ExitCode converts a wait status to the exit code containerd reports:
// the code, or 128+signal.
func ExitCode(ws unix.WaitStatus) uint32 {
	if ws.Signaled() {
		return 128 + uint32(ws.Signal())
	}
	return uint32(ws.ExitStatus())
}

// nullNetNS is runsc's shared, bind-mounted empty network namespace for
// gofers (gvisor.dev/gvisor/runsc/specutils.NullNetNSFilename).
const nullNetNS = "null-netns"

// ReleaseSharedMounts unmounts runsc's shared null network namespace under
// the root. Call it only when no sandbox of this root exists. Concurrent
// creates can stack bind mounts on the path, so unmount until none is left.
func (c *Client) ReleaseSharedMounts() {
	p := filepath.Join(c.Root, nullNetNS)
	for unix.Unmount(p, unix.MNT_DETACH) == nil {
	}
}

// IO is the stdio runsc hands to a container or exec: files the sandbox
// keeps (dups of) for the process's whole life.
type IO struct {
	In, Out, Err *os.File
}

var _ runc.IO = IO{}

func (o IO) Close() error          { return nil }
func (o IO) Stdin() io.WriteCloser { return nil }
func (o IO) Stdout() io.ReadCloser { return nil }
func (o IO) Stderr() io.ReadCloser { return nil }
func (o IO) Set(cmd *exec.Cmd) {
	if o.In != nil {
		cmd.Stdin = o.In
	}
	if o.Out != nil {
		cmd.Stdout = o.Out
	}
	if o.Err != nil {
		cmd.Stderr = o.Err
	}
}

// containerManagerExecuteAsync is runsc's control RPC that starts a
// process in a container and returns its pid (runsc/boot.ContMgrExecuteAsync).
const containerManagerExecuteAsync = MethodExecuteAsync

// Exec starts a process in a running container of sandbox sandboxID over
// the control socket and returns its pid inside the sandbox. This is what
// `runsc exec` does, minus the helper process: `runsc exec --detach` leaves
// a child behind that waits for the process and consumes its exit status.
func (c *Client) Exec(ctx context.Context, sandboxID, cid string, proc specs.Process, stdio IO) (int, error) {
	return c.ExecWithFiles(ctx, sandboxID, cid, proc, stdio, nil)
}

// ExecWithFiles is Exec with extra files given to the process at the
// guest fds named by the map's keys (which must be > 2).
func (c *Client) ExecWithFiles(ctx context.Context, sandboxID, cid string, proc specs.Process, stdio IO, extra map[int]*os.File) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, CreateTimeout)
	defer cancel()
	caps, err := specutils.Capabilities(c.Flags["net-raw"] == "true", proc.Capabilities)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: capabilities: %w", cid, err)
	}
	groups := make([]auth.KGID, 0, len(proc.User.AdditionalGids))
	for _, g := range proc.User.AdditionalGids {
		groups = append(groups, auth.KGID(g))
	}
	fds := map[int]*os.File{}
	for guest, f := range extra {
		if guest <= 2 {
			return 0, fmt.Errorf("exec in %s: extra file at guest fd %d collides with stdio", cid, guest)
		}
		fds[guest] = f
	}
	fds[0], fds[1], fds[2] = stdio.In, stdio.Out, stdio.Err
	for i := 0; i <= 2; i++ {
		if fds[i] != nil {
			continue
		}
		devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return 0, err
		}
		defer devnull.Close()
		fds[i] = devnull
	}
	args := &control.ExecArgs{
		Argv:             proc.Args,
		Envv:             proc.Env,
		WorkingDirectory: proc.Cwd,
		KUID:             auth.KUID(proc.User.UID),
		KGID:             auth.KGID(proc.User.GID),
		ExtraKGIDs:       groups,
		Capabilities:     caps,
		StdioIsPty:       proc.Terminal,
		NoNewPrivileges:  proc.NoNewPrivileges,
		SupportTTYs:      true,
		ContainerID:      cid,
		FilePayload:      control.NewFilePayload(fds, nil),
	}
	var pid int32
	if err := c.rpc(ctx, sandboxID, containerManagerExecuteAsync, args, &pid); err != nil {
		return 0, fmt.Errorf("exec in %s: %w", cid, err)
	}
	return int(pid), nil
}

// Pause and Resume freeze and thaw a container.
func (c *Client) Pause(ctx context.Context, id string) (retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "pause", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	return c.cmd().Pause(ctx, id)
}

func (c *Client) Resume(ctx context.Context, id string) (retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "resume", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	return c.cmd().Resume(ctx, id)
}

// Ps lists a container's pids inside the sandbox.
func (c *Client) Ps(ctx context.Context, id string) (_ []int, retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "ps", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	return c.cmd().Ps(ctx, id)
}

// Stats returns runsc's per-container stats (CPU and memory as the
// sandbox's kernel accounts them).
//
// It asks the sandbox over its control socket (containerManager.Event), as
// `runsc events --stats` does, without starting a runsc process: CRI's
// stats collector asks every container every second, and a runsc process
// per container per second was most of an idle node's CPU. CPU usage is
// the Sentry's own accounting of the container.
func (c *Client) Stats(ctx context.Context, sandboxID, cid string) (_ *runc.Stats, retErr error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	var out eventOut
	if err := c.rpc(ctx, sandboxID, MethodEvent, &cid, &out); err != nil {
		return nil, fmt.Errorf("stats of %s: %w", cid, err)
	}
	st := out.Event.Data
	st.Cpu.Usage.Total = out.ContainerUsage[cid]
	return &st, nil
}

// eventOut is runsc/boot.EventOut (uRPC encodes it as JSON; its data is
// runc's stats structure).
type eventOut struct {
	Event struct {
		Type string     `json:"type"`
		ID   string     `json:"id"`
		Data runc.Stats `json:"data"`
	} `json:"event"`
	ContainerUsage map[string]uint64 `json:"containerUsage"`
}

// Update applies new resources to a container.
func (c *Client) Update(ctx context.Context, id string, res *specs.LinuxResources) (retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "update", id)
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	return c.cmd().Update(ctx, id, res)
}

// waitPIDArgs mirrors gvisor.dev/gvisor/runsc/boot.WaitPIDArgs (uRPC
// encodes by field name).
type waitPIDArgs struct {
	PID int32
	CID string
}

// containerManagerWaitPID is runsc's control RPC that waits for one
// process of a container (runsc/boot.ContMgrWaitPID).
const containerManagerWaitPID = MethodWaitPID

// WaitPID blocks in this process until process pid of container cid exits.
func (c *Client) WaitPID(ctx context.Context, sandboxID, cid string, pid int) (unix.WaitStatus, error) {
	return c.call(ctx, sandboxID, containerManagerWaitPID, &waitPIDArgs{PID: int32(pid), CID: cid})
}

// Features returns `runsc features`: the runtime-spec features document
// runsc itself advertises.
func (c *Client) Features(ctx context.Context) (_ *features.Features, retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "features", "")
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.Path, "features").Output()
	if err != nil {
		return nil, fmt.Errorf("%s features: %w", c.Path, err)
	}
	var f features.Features
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, fmt.Errorf("%s features: %w", c.Path, err)
	}
	return &f, nil
}

// IsNoSuchProcess reports runsc's answer to a signal for a process that
// has exited already ("signaling process ... PID 0: no such process").
func IsNoSuchProcess(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such process")
}

// connect dials a control socket within ctx: a hung sandbox whose listen
// backlog is full would block connect(2) for good. A connection that
// completes after ctx ended is closed.
func connect(ctx context.Context, path string) (*urpc.Client, error) {
	type result struct {
		conn *urpc.Client
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := client.ConnectTo(path)
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		return r.conn, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// portForwardArgs is runsc/boot.PortForwardOpts (uRPC encodes by field
// name; runsc/boot does not build against containerd's runtime-spec).
type portForwardArgs struct {
	urpc.FilePayload
	ContainerID string
	Port        uint16
}

// PortForward connects to a TCP port of a sandbox's network stack (gVisor's
// netstack, or the host's with network=host) through the control socket:
// the Sentry dials the port from inside and splices it to one end of a
// socket pair; the other end is returned. cid is a started container of
// the sandbox (its root).
func (c *Client) PortForward(ctx context.Context, sandboxID, cid string, port uint16) (net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("port forward socket pair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "port-forward")
	defer ours.Close()
	theirs := os.NewFile(uintptr(fds[1]), "port-forward-sandbox")
	defer theirs.Close()
	args := &portForwardArgs{FilePayload: urpc.FilePayload{Files: []*os.File{theirs}}, ContainerID: cid, Port: port}
	if err := c.rpc(ctx, sandboxID, MethodPortForward, args, &struct{}{}); err != nil {
		return nil, fmt.Errorf("port forward to port %d: %w", port, err)
	}
	return net.FileConn(ours)
}
