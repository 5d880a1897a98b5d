package runsc

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/unet"
	"gvisor.dev/gvisor/pkg/urpc"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   unix.WaitStatus
		want uint32
	}{
		{"exit 0", unix.WaitStatus(0), 0},
		{"exit 3", unix.WaitStatus(3 << 8), 3},
		{"exit 255", unix.WaitStatus(255 << 8), 255},
		{"SIGKILL", unix.WaitStatus(unix.SIGKILL), 137},
		{"SIGTERM", unix.WaitStatus(unix.SIGTERM), 143},
		{"SIGKILL with core dump", unix.WaitStatus(unix.SIGKILL) | 0x80, 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExitCode(tc.ws); got != tc.want {
				t.Errorf("ExitCode(%#x) = %d, want %d", uint32(tc.ws), got, tc.want)
			}
		})
	}
}

// A container that is gone reads as ErrNotExist; a runsc binary that
// cannot run does not (it says nothing about the container).
func TestKillOfMissingContainerVsMissingBinary(t *testing.T) {
	missing := &Client{Path: filepath.Join(t.TempDir(), "no-runsc"), Root: t.TempDir()}
	if err := missing.Delete(context.Background(), "c1"); err == nil || errors.Is(err, ErrNotExist) {
		t.Errorf("Delete with a missing runsc binary = %v, want an error that is not ErrNotExist", err)
	}
	// Kill goes over the control socket: no sandbox, no container.
	if err := missing.Kill(context.Background(), "s1", "c1", unix.SIGKILL, false); !errors.Is(err, ErrNotExist) {
		t.Errorf("Kill in a sandbox that does not exist = %v, want ErrNotExist", err)
	}
	for msg, want := range map[string]bool{
		"loading container: file does not exist":                 true,
		`container "c1" not found`:                               true,
		"open /x/c1_sandbox:c1.state: no such file or directory": true,
		"permission denied":                                      false,
		"signaling process in container: no such process":        false,
	} {
		if got := isNotExist(errors.New(msg)); got != want {
			t.Errorf("isNotExist(%q) = %v, want %v", msg, got, want)
		}
	}
}

// A control socket that accepts nothing (a hung sandbox with a full listen
// backlog) does not block a connect past its context.
func TestConnectHonoursDeadline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hung.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	// Fill the backlog with connections nobody accepts.
	for i := 0; i < 4; i++ {
		c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(c)
		_ = unix.Connect(c, &unix.SockaddrUnix{Name: path})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	conn, err := connect(ctx, path)
	if err == nil {
		conn.Close()
		t.Skip("the kernel accepted another connection into the backlog; nothing to bound")
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("connect returned after %v, want about the 300ms deadline", took)
	}
}

// containerManager stands in for the Sentry's control server: uRPC names
// methods after the receiver's type, as runsc/boot's containerManager.
type containerManager struct {
	mu    sync.Mutex
	got   []signalArgs
	err   error
	block chan struct{} // when set, calls hang until it is closed
}

func (cm *containerManager) Signal(args *signalArgs, _ *struct{}) error {
	cm.mu.Lock()
	block := cm.block
	cm.mu.Unlock()
	if block != nil {
		<-block
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	cm.got = append(cm.got, *args)
	return cm.err
}

// serveControl serves cm on the control socket of sandbox id under c's root.
func serveControl(t *testing.T, c *Client, id string, cm *containerManager) {
	t.Helper()
	srv := urpc.NewServer()
	srv.Register(cm)
	ln, err := unet.BindAndListen(c.ControlSocket(id), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			srv.StartHandling(conn)
		}
	}()
}

// Kill and KillPid are one containerManager.Signal call each, with the
// arguments runsc kill would send; the Sentry's answers map to ErrNotExist
// and "no such process" as runsc kill's did.
func TestKillOverControlSocket(t *testing.T) {
	c := &Client{Path: "/nonexistent/runsc", Root: t.TempDir()}
	cm := &containerManager{}
	serveControl(t, c, "sb", cm)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		want signalArgs
	}{
		{"init", func() error { return c.Kill(ctx, "sb", "c1", unix.SIGTERM, false) }, signalArgs{CID: "c1", Signo: 15, Mode: deliverToProcess}},
		{"all", func() error { return c.Kill(ctx, "sb", "c1", unix.SIGKILL, true) }, signalArgs{CID: "c1", Signo: 9, Mode: deliverToAllProcesses}},
		{"pid", func() error { return c.KillPid(ctx, "sb", "c1", 7, unix.SIGINT) }, signalArgs{CID: "c1", Signo: 2, PID: 7, Mode: deliverToProcess}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm.mu.Lock()
			cm.got = nil
			cm.mu.Unlock()
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			cm.mu.Lock()
			defer cm.mu.Unlock()
			if len(cm.got) != 1 || cm.got[0] != tc.want {
				t.Errorf("the sandbox got %+v, want one %+v", cm.got, tc.want)
			}
		})
	}
	if err := c.KillPid(ctx, "sb", "c1", 0, unix.SIGKILL); !errdefs.IsInvalidArgument(err) {
		t.Errorf("KillPid of pid 0 = %v, want InvalidArgument (pid 0 would be the init)", err)
	}
	for msg, check := range map[string]func(error) bool{
		`container "c1" not found`: func(err error) bool { return errors.Is(err, ErrNotExist) },
		`signaling process in container "c1" PID 0: no such process`: func(err error) bool {
			return IsNoSuchProcess(err) && !errors.Is(err, ErrNotExist)
		},
		"permission denied": func(err error) bool { return err != nil && !errors.Is(err, ErrNotExist) && !IsNoSuchProcess(err) },
	} {
		cm.mu.Lock()
		cm.err = errors.New(msg)
		cm.mu.Unlock()
		if err := c.Kill(ctx, "sb", "c1", unix.SIGKILL, false); !check(err) {
			t.Errorf("the sandbox answered %q: Kill = %v", msg, err)
		}
	}
}

// A sandbox that takes a call and never answers (a hung Sentry) does not
// hold the caller past its context: the socket is closed under the call.
func TestRPCToHungSandboxEndsWithContext(t *testing.T) {
	c := &Client{Path: "/nonexistent/runsc", Root: t.TempDir()}
	cm := &containerManager{block: make(chan struct{})}
	defer close(cm.block)
	serveControl(t, c, "sb", cm)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Kill(ctx, "sb", "c1", unix.SIGKILL, true) }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrNotExist) {
			t.Errorf("Kill in a hung sandbox = %v, want a timeout error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Kill in a hung sandbox still blocked 5s after its 300ms context ended")
	}
}
