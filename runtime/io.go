package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
	"github.com/containerd/fifo"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc"
)

// stdio is a process's IO as handed to runsc. The sandbox keeps its own
// dups of stdout/stderr for the process's whole life, so output keeps
// flowing while containerd restarts: FIFOs are opened read-write (the open
// never blocks and a write never fails because containerd's reader is
// away); regular files are opened O_APPEND (runsc writes at offset 0
// otherwise).
//
// Stdin goes through a pipe fed from the stdin FIFO by a goroutine, so
// that CloseIO can deliver EOF.
type stdio struct {
	files runsc.IO
	// stdinFifo and stdinW are containerd's side of stdin; nil without
	// stdin.
	stdinFifo io.ReadCloser
	stdinW    *os.File
	closeOnce sync.Once
	// copied is closed when the stdin copier has seen the FIFO's EOF and
	// passed everything on.
	copied chan struct{}
	// console is the pty master of a TTY process; containerd copies
	// between it and the FIFOs.
	console console.Console
	// pty is the pollable, non-blocking handle on the master the copiers
	// use (see attachConsole); consoleDone is closed when the output copier
	// has ended.
	pty         *os.File
	consoleDone chan struct{}
	lastOutput  atomic.Int64
	// logger is the process's logging binary (a binary:// stdout).
	logger *binaryLogger
}

// stopLogger ends the process's logging binary, if it has one.
func (s *stdio) stopLogger() {
	if s != nil {
		s.logger.stop()
	}
}

func openOutput(path string) (*os.File, error) {
	path = fileURIPath(path)
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	fi, err := os.Stat(path)
	if err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
		return os.OpenFile(path, os.O_RDWR, 0)
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// openIO opens a process's IO. release must be called once runsc has
// taken its dups (after create/exec): it closes containerd's copies.
func openIO(ctx context.Context, id string, pio runtime.IO) (_ *stdio, release func(), retErr error) {
	s := &stdio{}
	if pio.Terminal {
		// The pty is attached once runsc (or the exec) has made it.
		return s, func() {}, nil
	}
	var toClose []io.Closer
	defer func() {
		if retErr != nil {
			for _, c := range toClose {
				c.Close()
			}
		}
	}()
	var out, errf *os.File
	if uri, ok := loggerURI(pio.Stdout); ok {
		lg, err := startLogger(ctx, id, uri)
		if err != nil {
			return nil, nil, err
		}
		defer func() {
			if retErr != nil {
				lg.stop()
			}
		}()
		s.logger, out, errf = lg, lg.out, lg.err
		toClose = append(toClose, out, errf)
	} else {
		f, err := openOutput(pio.Stdout)
		if err != nil {
			return nil, nil, fmt.Errorf("open stdout %s: %w", pio.Stdout, err)
		}
		toClose = append(toClose, f)
		out, errf = f, f
	}
	if s.logger == nil && pio.Stderr != pio.Stdout {
		var err error
		if errf, err = openOutput(pio.Stderr); err != nil {
			return nil, nil, fmt.Errorf("open stderr %s: %w", pio.Stderr, err)
		}
		toClose = append(toClose, errf)
	}
	s.files.Out, s.files.Err = out, errf
	if pio.Stdin != "" {
		f, err := fifo.OpenFifo(context.WithoutCancel(ctx), pio.Stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("open stdin %s: %w", pio.Stdin, err)
		}
		toClose = append(toClose, f)
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		toClose = append(toClose, pr, pw)
		s.files.In, s.stdinFifo, s.stdinW = pr, f, pw
		s.copied = make(chan struct{})
		go func() {
			_, _ = io.Copy(pw, f)
			close(s.copied)
			s.closeStdin()
		}()
	}
	release = func() {
		out.Close()
		errf.Close()
		if s.files.In != nil {
			s.files.In.Close()
		}
	}
	return s, release, nil
}

// stdinDrainTimeout bounds how long CloseIO waits for stdin data still in
// flight (the client has closed its end; the copier drains what is left).
const stdinDrainTimeout = 2 * time.Second

// finishStdin is CloseIO: the client is done writing. Data still in the
// FIFO or the copier goes to the process first, then it sees EOF.
func (s *stdio) finishStdin() {
	if s == nil || s.stdinFifo == nil {
		return
	}
	if s.copied != nil {
		select {
		case <-s.copied:
		case <-time.After(stdinDrainTimeout):
		}
	}
	s.closeStdin()
}

// closeStdin delivers EOF to the process's stdin now.
func (s *stdio) closeStdin() {
	if s == nil || s.stdinFifo == nil {
		return
	}
	s.closeOnce.Do(func() {
		if s.stdinW != nil {
			s.stdinW.Close()
		}
		s.stdinFifo.Close()
	})
}

// attachConsole copies between a TTY process's pty master and its FIFOs:
// output to the stdout FIFO, the stdin FIFO to the terminal.
func (s *stdio) attachConsole(ctx context.Context, master console.Console, pio runtime.IO) error {
	out, err := openOutput(pio.Stdout)
	if err != nil {
		return fmt.Errorf("open stdout %s: %w", pio.Stdout, err)
	}
	// The master's open file description is shared with the dup parked in
	// the sandbox (ttypark.go), and the sentry makes it non-blocking. So
	// copy through a non-blocking dup wrapped by os.NewFile, which Go's
	// poller serves: EAGAIN waits instead of ending the copy, and Close
	// unblocks a pending read.
	dup, err := unix.Dup(int(master.Fd()))
	if err != nil {
		out.Close()
		return fmt.Errorf("pty master: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		out.Close()
		return fmt.Errorf("pty master: %w", err)
	}
	s.console, s.pty = master, os.NewFile(uintptr(dup), "pty-master")
	s.consoleDone = make(chan struct{})
	s.lastOutput.Store(time.Now().UnixNano())
	go func() {
		defer close(s.consoleDone)
		defer out.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := s.pty.Read(buf)
			if n > 0 {
				s.lastOutput.Store(time.Now().UnixNano())
				if _, werr := out.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	if pio.Stdin != "" {
		f, err := fifo.OpenFifo(context.WithoutCancel(ctx), pio.Stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open stdin %s: %w", pio.Stdin, err)
		}
		s.stdinFifo = f
		go func() { _, _ = io.Copy(s.pty, f) }()
	}
	return nil
}

// resize sets a TTY process's window size.
func (s *stdio) resize(size runtime.ConsoleSize) error {
	if s == nil || s.console == nil {
		return fmt.Errorf("no TTY: %w", errdefs.ErrFailedPrecondition)
	}
	return s.console.Resize(console.WinSize{Width: uint16(size.Width), Height: uint16(size.Height)})
}

// consoleDrainIdle and consoleDrainMax bound how long closing a terminal
// waits for output still in the pty: until the copier has been idle that
// long, or has ended, at most consoleDrainMax.
const (
	consoleDrainIdle = 200 * time.Millisecond
	consoleDrainMax  = 2 * time.Second
)

// closeConsole releases the pty master once the process is gone, after the
// output still in the pty has been copied.
func (s *stdio) closeConsole() {
	if s == nil || s.console == nil {
		return
	}
	deadline := time.Now().Add(consoleDrainMax)
	for time.Now().Before(deadline) && time.Since(time.Unix(0, s.lastOutput.Load())) < consoleDrainIdle {
		select {
		case <-s.consoleDone:
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	s.pty.Close()
	<-s.consoleDone
	s.console.Close()
}

// chownIO gives a process's stdio FIFOs and files to owner, as runc's shim
// does with IoUid/IoGid for user-namespaced pods.
func chownIO(pio runtime.IO, owner IOOwner) error {
	for _, p := range []string{pio.Stdin, pio.Stdout, pio.Stderr} {
		if p == "" {
			continue
		}
		if err := os.Chown(p, int(owner.UID), int(owner.GID)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("set owner of %s to %d:%d: %w", p, owner.UID, owner.GID, err)
		}
	}
	return nil
}
