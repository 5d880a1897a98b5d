// Package runscfake is a runsc for unit tests: it implements runsc.Runner
// in memory, with a real host process per sandbox (so that pid checks,
// pidfds and kills behave as with runsc), and lets a test end containers
// and execs, kill sandboxes, and make any call hang or fail.
package runscfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc"
)

// Hook runs at the start of a call (method name as in runsc.Runner, id the
// container or sandbox). A non-nil error fails the call. A hook may block:
// honour ctx to model a call that hangs until its deadline.
type Hook func(ctx context.Context, method, id string) error

// Fake is the shared state of a fake runsc; runners made by For and
// WithRoot share it.
type Fake struct {
	mu         sync.Mutex
	sandboxes  map[string]*Sandbox
	containers map[string]*Container
	hooks      map[string]Hook
	calls      map[string]int
	nextPid    int
}

// Sandbox is one fake sandbox: a real, idle host process.
type Sandbox struct {
	ID    string
	Root  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	dead  chan struct{}
}

// Container is one fake container.
type Container struct {
	ID, SandboxID string
	Status        string // created, running, paused, stopped
	exit          chan struct{}
	ws            unix.WaitStatus
	execs         map[int]*execProc
}

type execProc struct {
	exit chan struct{}
	ws   unix.WaitStatus
}

// New returns an empty fake.
func New() *Fake {
	return &Fake{sandboxes: map[string]*Sandbox{}, containers: map[string]*Container{}, hooks: map[string]Hook{}, calls: map[string]int{}, nextPid: 100}
}

// Runner returns a runner under root.
func (f *Fake) Runner(root string) runsc.Runner { return &runner{f: f, root: root} }

// SetHook installs (nil removes) the hook for a method ("*" for all).
func (f *Fake) SetHook(method string, h Hook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h == nil {
		delete(f.hooks, method)
		return
	}
	f.hooks[method] = h
}

// Calls counts the calls of a method.
func (f *Fake) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// Hang is a hook that blocks until the call's deadline or cancellation.
func Hang(ctx context.Context, _, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// Fail is a hook that fails every call with err.
func Fail(err error) Hook {
	return func(context.Context, string, string) error { return err }
}

func (f *Fake) enter(ctx context.Context, method, id string) error {
	f.mu.Lock()
	f.calls[method]++
	h := f.hooks[method]
	if h == nil {
		h = f.hooks["*"]
	}
	f.mu.Unlock()
	if h != nil {
		return h(ctx, method, id)
	}
	return nil
}

// Forget removes a sub-container from its sandbox without an exit, as if
// it ended and was deleted while nobody watched.
func (f *Fake) Forget(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok && c.SandboxID != id {
		delete(f.containers, id)
	}
}

// Exit ends a container's init with status (an exit code, or 128+signal).
func (f *Fake) Exit(id string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok {
		f.exitLocked(c, waitStatus(status))
	}
}

// ExitExec ends an exec.
func (f *Fake) ExitExec(containerID string, pid, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[containerID]
	if !ok {
		return
	}
	if e, ok := c.execs[pid]; ok {
		e.ws = waitStatus(status)
		closeOnce(e.exit)
	}
}

// KillSandbox kills a sandbox's host process, as the OOM killer would.
func (f *Fake) KillSandbox(id string) {
	f.mu.Lock()
	s := f.sandboxes[id]
	f.mu.Unlock()
	if s != nil {
		_ = s.cmd.Process.Kill()
		<-s.dead
	}
}

// Container returns a copy of a container's state, or nil.
func (f *Fake) Container(id string) *Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil
	}
	cp := *c
	return &cp
}

// SandboxPid is the host pid of a sandbox, 0 if none.
func (f *Fake) SandboxPid(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sandboxes[id]; ok {
		return s.cmd.Process.Pid
	}
	return 0
}

// Close kills every sandbox process.
func (f *Fake) Close() {
	f.mu.Lock()
	var all []*Sandbox
	for _, s := range f.sandboxes {
		all = append(all, s)
	}
	f.mu.Unlock()
	for _, s := range all {
		_ = s.cmd.Process.Kill()
		<-s.dead
	}
}

func waitStatus(status int) unix.WaitStatus {
	if status > 128 {
		return unix.WaitStatus(status - 128) // signalled
	}
	return unix.WaitStatus(status << 8)
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (f *Fake) exitLocked(c *Container, ws unix.WaitStatus) {
	if c.Status == "stopped" {
		return
	}
	c.Status, c.ws = "stopped", ws
	closeOnce(c.exit)
	for _, e := range c.execs {
		e.ws = unix.WaitStatus(unix.SIGKILL)
		closeOnce(e.exit)
	}
}

func (f *Fake) sandboxAlive(id string) (*Sandbox, bool) {
	s, ok := f.sandboxes[id]
	if !ok {
		return nil, false
	}
	select {
	case <-s.dead:
		return s, false
	default:
		return s, true
	}
}

type runner struct {
	f     *Fake
	root  string
	flags map[string]string
}

func (r *runner) For(flags map[string]string) runsc.Runner {
	cp := *r
	cp.flags = maps.Clone(r.flags)
	if cp.flags == nil {
		cp.flags = map[string]string{}
	}
	maps.Copy(cp.flags, flags)
	return &cp
}

func (r *runner) WithRoot(root string) runsc.Runner {
	cp := *r
	cp.root = root
	return &cp
}

func (r *runner) RootDir() string            { return r.root }
func (r *runner) FlagSet() map[string]string { return r.flags }
func (r *runner) DebugLogHint() string       { return "fake runsc" }
func (r *runner) ReleaseSharedMounts()       {}
func (r *runner) Version(ctx context.Context) (string, error) {
	if err := r.f.enter(ctx, "Version", ""); err != nil {
		return "", err
	}
	return "runsc version fake", nil
}

func (r *runner) Features(ctx context.Context) (*features.Features, error) {
	if err := r.f.enter(ctx, "Features", ""); err != nil {
		return nil, err
	}
	return &features.Features{OCIVersionMin: "1.0.0", OCIVersionMax: "1.1.0"}, nil
}

func (r *runner) Create(ctx context.Context, id, bundle string, opts runsc.CreateOptions) error {
	if err := r.f.enter(ctx, "Create", id); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return fmt.Errorf("runsc create %s: %w", id, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("runsc create %s: %w", id, err)
	}
	f := r.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[id]; ok {
		return fmt.Errorf("runsc create %s: container already exists", id)
	}
	sid := id
	if spec.Annotations["io.kubernetes.cri.container-type"] == "container" {
		sid = spec.Annotations["io.kubernetes.cri.sandbox-id"]
		if _, alive := f.sandboxAlive(sid); !alive {
			return fmt.Errorf("runsc create %s: sandbox %s: %w", id, sid, runsc.ErrNotExist)
		}
	} else {
		// A sandbox: an idle shell whose argv names the root, like runsc's.
		cmd := exec.Command("/bin/sh", "-c", "read x", "runsc-fake", "--root="+r.root)
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		// Until its exec has finished, a new process shows no argv.
		for i := 0; i < 200; i++ {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline"); len(b) > 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		s := &Sandbox{ID: id, Root: r.root, cmd: cmd, stdin: in, dead: make(chan struct{})}
		go func() {
			_ = cmd.Wait()
			f.mu.Lock()
			for _, c := range f.containers {
				if c.SandboxID == id {
					f.exitLocked(c, unix.WaitStatus(unix.SIGKILL))
				}
			}
			f.mu.Unlock()
			close(s.dead)
		}()
		f.sandboxes[id] = s
	}
	f.containers[id] = &Container{ID: id, SandboxID: sid, Status: "created", exit: make(chan struct{}), execs: map[int]*execProc{}}
	if opts.PidFile != "" {
		pid := f.sandboxes[sid].cmd.Process.Pid
		if err := os.WriteFile(opts.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) container(id string) (*Container, error) {
	c, ok := r.f.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q: %w", id, runsc.ErrNotExist)
	}
	return c, nil
}

// Run is Create then Start, as runsc run --detach; a failed start
// destroys what was created.
func (r *runner) Run(ctx context.Context, id, bundle string, opts runsc.CreateOptions) error {
	if err := r.f.enter(ctx, "Run", id); err != nil {
		return err
	}
	if err := r.Create(ctx, id, bundle, opts); err != nil {
		return err
	}
	if err := r.Start(ctx, id, nil); err != nil {
		_ = r.Delete(context.WithoutCancel(ctx), id)
		return err
	}
	return nil
}

func (r *runner) Start(ctx context.Context, id string, _ runc.IO) error {
	if err := r.f.enter(ctx, "Start", id); err != nil {
		return err
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	c, err := r.container(id)
	if err != nil {
		return err
	}
	if c.Status != "created" {
		return fmt.Errorf("runsc start %s: container is %s", id, c.Status)
	}
	c.Status = "running"
	return nil
}

func (r *runner) State(ctx context.Context, id string) (*runsc.Container, error) {
	if err := r.f.enter(ctx, "State", id); err != nil {
		return nil, err
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	c, err := r.container(id)
	if err != nil {
		return nil, err
	}
	st := c.Status
	if _, alive := r.f.sandboxAlive(c.SandboxID); !alive {
		st = "stopped"
	}
	return &runsc.Container{ID: id, Status: st}, nil
}

func (r *runner) Kill(ctx context.Context, _, id string, sig unix.Signal, _ bool) error {
	if err := r.f.enter(ctx, "Kill", id); err != nil {
		return err
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	c, err := r.container(id)
	if err != nil {
		return err
	}
	if c.Status == "stopped" {
		return errors.New("no such process")
	}
	if sig == unix.SIGKILL || sig == unix.SIGTERM {
		if c.SandboxID == c.ID {
			// The root container: its sandbox goes with it.
			s := r.f.sandboxes[c.SandboxID]
			_ = s.cmd.Process.Kill()
		}
		r.f.exitLocked(c, unix.WaitStatus(sig))
	}
	return nil
}

func (r *runner) Delete(ctx context.Context, id string) error {
	if err := r.f.enter(ctx, "Delete", id); err != nil {
		return err
	}
	r.f.mu.Lock()
	c, ok := r.f.containers[id]
	var s *Sandbox
	if ok {
		r.f.exitLocked(c, unix.WaitStatus(unix.SIGKILL))
		delete(r.f.containers, id)
		if c.SandboxID == id {
			s = r.f.sandboxes[id]
			delete(r.f.sandboxes, id)
		}
	}
	r.f.mu.Unlock()
	if s != nil {
		_ = s.cmd.Process.Kill()
		<-s.dead
	}
	return nil
}

func (r *runner) KillPid(ctx context.Context, _, id string, pid int, sig unix.Signal) error {
	if err := r.f.enter(ctx, "KillPid", id); err != nil {
		return err
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	c, err := r.container(id)
	if err != nil {
		return err
	}
	e, ok := c.execs[pid]
	if !ok {
		return errors.New("no such process")
	}
	if sig == unix.SIGKILL || sig == unix.SIGTERM {
		e.ws = unix.WaitStatus(sig)
		closeOnce(e.exit)
	}
	return nil
}

func (r *runner) setStatus(ctx context.Context, method, id, from, to string) error {
	if err := r.f.enter(ctx, method, id); err != nil {
		return err
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	c, err := r.container(id)
	if err != nil {
		return err
	}
	if c.Status != from {
		return fmt.Errorf("runsc %s %s: container is %s", method, id, c.Status)
	}
	c.Status = to
	return nil
}

func (r *runner) Pause(ctx context.Context, id string) error {
	return r.setStatus(ctx, "Pause", id, "running", "paused")
}

func (r *runner) Resume(ctx context.Context, id string) error {
	return r.setStatus(ctx, "Resume", id, "paused", "running")
}

func (r *runner) Ps(ctx context.Context, id string) ([]int, error) {
	if err := r.f.enter(ctx, "Ps", id); err != nil {
		return nil, err
	}
	return []int{1}, nil
}

func (r *runner) Stats(ctx context.Context, _, id string) (*runc.Stats, error) {
	if err := r.f.enter(ctx, "Stats", id); err != nil {
		return nil, err
	}
	return &runc.Stats{}, nil
}

func (r *runner) Update(ctx context.Context, id string, _ *specs.LinuxResources) error {
	return r.f.enter(ctx, "Update", id)
}

// wait blocks until done closes, the sandbox dies, or ctx ends.
func (r *runner) wait(ctx context.Context, sandboxID string, done chan struct{}, ws *unix.WaitStatus) (unix.WaitStatus, error) {
	r.f.mu.Lock()
	s, ok := r.f.sandboxes[sandboxID]
	r.f.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("connect to sandbox %s: no such file or directory", sandboxID)
	}
	select {
	case <-done:
		r.f.mu.Lock()
		defer r.f.mu.Unlock()
		select {
		case <-s.dead:
			// The sandbox took the container down: the connection broke.
			return 0, fmt.Errorf("sandbox %s: connection reset", sandboxID)
		default:
		}
		return *ws, nil
	case <-s.dead:
		return 0, fmt.Errorf("sandbox %s: connection reset", sandboxID)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (r *runner) WaitContainer(ctx context.Context, sandboxID, cid string) (unix.WaitStatus, error) {
	if err := r.f.enter(ctx, "WaitContainer", cid); err != nil {
		return 0, err
	}
	r.f.mu.Lock()
	c, err := r.container(cid)
	r.f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return r.wait(ctx, sandboxID, c.exit, &c.ws)
}

func (r *runner) WaitPID(ctx context.Context, sandboxID, cid string, pid int) (unix.WaitStatus, error) {
	if err := r.f.enter(ctx, "WaitPID", cid); err != nil {
		return 0, err
	}
	r.f.mu.Lock()
	c, err := r.container(cid)
	var e *execProc
	if err == nil {
		e = c.execs[pid]
	}
	r.f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if e == nil {
		return 0, errors.New("no such process")
	}
	return r.wait(ctx, sandboxID, e.exit, &e.ws)
}

func (r *runner) Exec(ctx context.Context, sandboxID, cid string, proc specs.Process, stdio runsc.IO) (int, error) {
	return r.ExecWithFiles(ctx, sandboxID, cid, proc, stdio, nil)
}

func (r *runner) ExecWithFiles(ctx context.Context, sandboxID, cid string, _ specs.Process, _ runsc.IO, _ map[int]*os.File) (int, error) {
	if err := r.f.enter(ctx, "Exec", cid); err != nil {
		return 0, err
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	c, err := r.container(cid)
	if err != nil {
		return 0, err
	}
	if c.Status != "running" {
		return 0, fmt.Errorf("exec in %s: container is %s", cid, c.Status)
	}
	r.f.nextPid++
	c.execs[r.f.nextPid] = &execProc{exit: make(chan struct{})}
	return r.f.nextPid, nil
}

// PortForward connects to an echo server standing in for the sandbox's
// port.
func (r *runner) PortForward(ctx context.Context, sandboxID, _ string, port uint16) (net.Conn, error) {
	if err := r.f.enter(ctx, "PortForward", sandboxID); err != nil {
		return nil, err
	}
	r.f.mu.Lock()
	_, alive := r.f.sandboxAlive(sandboxID)
	r.f.mu.Unlock()
	if !alive {
		return nil, fmt.Errorf("connect to sandbox %s: %w", sandboxID, runsc.ErrNotExist)
	}
	ours, theirs := net.Pipe()
	go func() {
		defer theirs.Close()
		_, _ = io.Copy(theirs, theirs)
	}()
	return ours, nil
}

func (r *runner) SandboxProcesses(sandboxID string) []int {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if s, alive := r.f.sandboxAlive(sandboxID); alive && s.Root == r.root {
		return []int{s.cmd.Process.Pid}
	}
	return nil
}

func (r *runner) Containers(sandboxID string) []string {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	var out []string
	for _, c := range r.f.containers {
		if c.SandboxID == sandboxID {
			out = append(out, c.ID)
		}
	}
	return out
}
