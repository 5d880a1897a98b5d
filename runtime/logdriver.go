package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
)

// Logging binaries (containerd's `binary://` stdio scheme, used by nerdctl
// and docker-style log drivers): as the runc shim does
// (cmd/containerd-shim-runc-v2/process/io.go), the runtime starts the
// binary with the process's stdout and stderr pipes at fds 3 and 4 and a
// readiness pipe at fd 5, env CONTAINER_ID and CONTAINER_NAMESPACE, and
// arguments from the URI's query. The sandbox gets the pipes' write ends.

// loggerReadyTimeout bounds the wait for a logging binary to be ready.
const loggerReadyTimeout = 10 * time.Second

// loggerTermTimeout is how long a logging binary has to flush after SIGTERM.
const loggerTermTimeout = 12 * time.Second

// binaryLogger is a running logging binary.
type binaryLogger struct {
	cmd      *exec.Cmd
	waited   chan struct{}
	out, err *os.File // write ends for the sandbox
}

// loggerURI returns the URI of a stdio path that names a logging binary.
func loggerURI(stdout string) (*url.URL, bool) {
	u, err := url.Parse(stdout)
	if err != nil || (u.Scheme != "binary" && u.Scheme != "binary-v2") {
		return nil, false
	}
	return u, true
}

// fileURIPath returns the path of a `file://` stdio URI, or p unchanged.
func fileURIPath(p string) string {
	if u, err := url.Parse(p); err == nil && u.Scheme == "file" {
		return u.Path
	}
	return p
}

// startLogger starts the logging binary of uri for process id.
func startLogger(ctx context.Context, id string, uri *url.URL) (_ *binaryLogger, retErr error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	var toClose []*os.File
	defer func() {
		for _, f := range toClose {
			f.Close()
		}
	}()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	toClose = append(toClose, outR)
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return nil, err
	}
	toClose = append(toClose, errR)
	readyR, readyW, err := os.Pipe()
	if err != nil {
		outW.Close()
		errW.Close()
		return nil, err
	}
	toClose = append(toClose, readyR, readyW)
	defer func() {
		if retErr != nil {
			outW.Close()
			errW.Close()
		}
	}()

	var args []string
	for k, vs := range uri.Query() {
		args = append(args, k)
		if len(vs) > 0 {
			args = append(args, vs[0])
		}
	}
	cmd := exec.Command(uri.Path, args...)
	cmd.Env = []string{"CONTAINER_ID=" + id, "CONTAINER_NAMESPACE=" + ns}
	cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	// Its own process group: a signal to containerd's group is not one to
	// the logger, which must outlive the process it logs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start logging binary %s: %w", uri.Path, err)
	}
	l := &binaryLogger{cmd: cmd, waited: make(chan struct{}), out: outW, err: errW}
	go func() { _ = cmd.Wait(); close(l.waited) }()
	readyW.Close()
	toClose = toClose[:len(toClose)-1]

	// Ready is a byte (binary-v2) or EOF (binary) on fd 5.
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		n, err := readyR.Read(b)
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			ready <- err
		case uri.Scheme == "binary-v2" && n == 0:
			ready <- fmt.Errorf("logging binary exited before it was ready")
		default:
			ready <- nil
		}
	}()
	select {
	case err = <-ready:
	case <-time.After(loggerReadyTimeout):
		err = fmt.Errorf("not ready within %s", loggerReadyTimeout)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		<-l.waited
		return nil, fmt.Errorf("logging binary %s: %w", uri.Path, err)
	}
	return l, nil
}

// stop ends the logging binary: SIGTERM lets it flush, SIGKILL after
// loggerTermTimeout. Its pipes have no writer left once the process's
// sandbox copies are gone, so it usually has exited already.
func (l *binaryLogger) stop() {
	if l == nil {
		return
	}
	select {
	case <-l.waited:
		return
	default:
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.waited:
	case <-time.After(loggerTermTimeout):
		log.L.WithField("pid", l.cmd.Process.Pid).Warn("logging binary did not exit after SIGTERM; killing it")
		_ = l.cmd.Process.Kill()
		<-l.waited
	}
}
