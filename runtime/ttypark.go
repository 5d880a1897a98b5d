package runtime

// A TTY container's pty master must outlive containerd: containerd copies
// between it and the container's FIFOs, and a restart (kill -9 included)
// must neither hang up the terminal nor lose output.
//
// Design: a dup of the master is parked inside the pod's runsc sandbox. A
// process in the sandbox's root container (shimless-pause, already there)
// is started over the ExecuteAsync control RPC with the master as its fd
// 3, so the sentry, which is runsc's own sandbox process, holds the host fd
// for as long as the container lives. No host process is added. After a
// restart the runtime finds that fd among the sandbox process's fds by the
// pty's index (fdinfo "tty-index") and takes it back with pidfd_getfd(2).
// While containerd is away output waits in the pty's buffer (a writer
// blocks once it is full) and nothing is lost. At delete the parking
// process is killed. Sandboxes whose root is not shimless-pause (pods of a
// gVisor-shim style handler, whose root is the pause image) are not
// parked: their TTYs end with containerd.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox"
	"github.com/shimless/shimless/sandbox/runsc"
)

// parkedFD is the guest fd the parking process holds the master at.
const parkedFD = 3

// parkTTY parks a dup of master in the task's sandbox and returns the
// pty's index and the parking process's pid inside the sandbox.
func (t *Task) parkTTY(ctx context.Context, master console.Console) (index, holder int, err error) {
	if t.sb.Kind() == sandbox.KindRoot {
		return -1, 0, nil
	}
	index, err = unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return -1, 0, fmt.Errorf("pty index: %w", err)
	}
	dup, err := unix.Dup(int(master.Fd()))
	if err != nil {
		return -1, 0, err
	}
	f := os.NewFile(uintptr(dup), "pty-master")
	defer f.Close()
	proc := specs.Process{
		Args: []string{sandbox.PauseBinary},
		Cwd:  "/",
		Env:  []string{"PATH=/"},
		User: specs.User{UID: 65535, GID: 65535},
	}
	holder, err = t.sb.Runsc().ExecWithFiles(ctx, t.sb.ID(), t.sb.ID(), proc, runsc.IO{}, map[int]*os.File{parkedFD: f})
	if err != nil {
		return -1, 0, fmt.Errorf("park pty master: %w", err)
	}
	return index, holder, nil
}

// unparkTTY ends the parking process.
func (t *Task) unparkTTY(ctx context.Context) {
	t.mu.Lock()
	holder := t.ttyHolder
	t.ttyHolder = 0
	t.mu.Unlock()
	if holder > 0 {
		_ = t.sb.Runsc().KillPid(ctx, t.sb.ID(), t.sb.ID(), holder, unix.SIGKILL)
	}
}

// reclaimTTY takes the parked pty master with the given index back from
// the sandbox process.
func reclaimTTY(sandboxPid, index int) (console.Console, error) {
	dir := filepath.Join("/proc", strconv.Itoa(sandboxPid))
	entries, err := os.ReadDir(filepath.Join(dir, "fdinfo"))
	if err != nil {
		return nil, err
	}
	want := fmt.Sprintf("tty-index:\t%d\n", index)
	for _, e := range entries {
		info, err := os.ReadFile(filepath.Join(dir, "fdinfo", e.Name()))
		if err != nil || !strings.Contains(string(info), want) {
			continue
		}
		if link, _ := os.Readlink(filepath.Join(dir, "fd", e.Name())); !strings.HasSuffix(link, "ptmx") {
			continue
		}
		target, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pidfd, err := unix.PidfdOpen(sandboxPid, 0)
		if err != nil {
			return nil, fmt.Errorf("pidfd of sandbox process %d: %w", sandboxPid, err)
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		unix.Close(pidfd)
		if err != nil {
			return nil, fmt.Errorf("take pty master from sandbox process %d: %w", sandboxPid, err)
		}
		return console.ConsoleFromFile(os.NewFile(uintptr(fd), "pty-master"))
	}
	return nil, fmt.Errorf("pty %d not found among the fds of sandbox process %d", index, sandboxPid)
}
