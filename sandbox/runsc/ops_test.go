package runsc

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	err := missing.Kill(context.Background(), "c1", unix.SIGKILL, false)
	if err == nil || errors.Is(err, ErrNotExist) {
		t.Errorf("Kill with a missing runsc binary = %v, want an error that is not ErrNotExist", err)
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
