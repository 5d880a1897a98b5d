// Package runsc owns every conversation with the runsc binary: nothing else
// in shimless builds a runsc command line. It wraps gVisor's own runsccmd
// package (the one gVisor's shim uses) and adds binary resolution, the
// operator's global flags, and per-call deadlines.
package runsc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gvisor.dev/gvisor/pkg/shim/v1/runsccmd"

	"github.com/shimless/shimless/telemetry"
)

// VersionTimeout bounds `runsc --version`, the usability probe.
const VersionTimeout = 10 * time.Second

// Client runs runsc with a fixed binary, root and global flags.
type Client struct {
	// Path is the resolved absolute path of the runsc binary.
	Path string
	// Root is runsc's --root.
	Root string
	// Flags are extra global flags (name without dashes -> value).
	Flags map[string]string
	// DebugLogDir, when non-empty, gets one runsc debug log per invocation.
	DebugLogDir string
}

// Resolve finds the runsc binary. A name with a slash is used as is; a bare
// name is looked up next to the running executable (so bin/containerd finds
// bin/runsc), then in PATH. The result must be an executable regular file.
func Resolve(name string) (string, error) {
	var candidates []string
	if strings.ContainsRune(name, '/') {
		candidates = []string{name}
	} else {
		if self, err := os.Executable(); err == nil {
			if beside := filepath.Join(filepath.Dir(self), name); exists(beside) {
				candidates = append(candidates, beside)
			}
		}
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
		if len(candidates) == 0 {
			return "", fmt.Errorf("runsc binary %q: not found next to containerd or in PATH", name)
		}
	}
	var firstErr error
	for _, c := range candidates {
		abs, err := filepath.Abs(c)
		if err != nil {
			return "", fmt.Errorf("runsc binary %q: %w", c, err)
		}
		fi, err := os.Stat(abs)
		switch {
		case err != nil:
			err = fmt.Errorf("runsc binary %q: %w", abs, err)
		case !fi.Mode().IsRegular():
			err = fmt.Errorf("runsc binary %q: not a regular file", abs)
		case fi.Mode().Perm()&0o111 == 0:
			err = fmt.Errorf("runsc binary %q: not executable", abs)
		default:
			return abs, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", firstErr
}

// cmd returns gVisor's runsccmd driver for this client.
func (c *Client) cmd() *runsccmd.Runsc {
	r := &runsccmd.Runsc{
		Command: c.Path,
		Root:    c.Root,
		Config:  c.Flags,
	}
	if c.DebugLogDir != "" {
		r.Debug = true
		r.DebugLog = c.DebugLogDir + "/"
	}
	return r
}

// globalArgs are the runsc flags every command of this client gets, as
// cmd() passes them (for the commands gVisor's runsccmd has no call for).
func (c *Client) globalArgs() []string {
	args := []string{"--root=" + c.Root}
	for _, k := range slices.Sorted(maps.Keys(c.Flags)) {
		args = append(args, "--"+k+"="+c.Flags[k])
	}
	if c.DebugLogDir != "" {
		args = append(args, "--debug", "--debug-log="+c.DebugLogDir+"/")
	}
	return args
}

// Version runs `runsc --version` and returns its first line. It is the
// probe that decides whether runsc is usable at all.
func (c *Client) Version(ctx context.Context) (_ string, retErr error) {
	ctx, done := telemetry.RunscCall(ctx, telemetry.KindCLI, "version", "")
	defer func() { done(retErr) }()
	ctx, cancel := context.WithTimeout(ctx, VersionTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.Path, "--version").CombinedOutput()
	if ctx.Err() != nil {
		return "", fmt.Errorf("%s --version: no answer within %s", c.Path, VersionTimeout)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%s --version: %v: %s", c.Path, err, strings.TrimSpace(string(out)))
		}
		return "", fmt.Errorf("%s --version: %w", c.Path, err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if !strings.HasPrefix(first, "runsc version") {
		return "", fmt.Errorf("%s --version: not runsc (printed %q)", c.Path, first)
	}
	return strings.TrimSpace(strings.TrimPrefix(first, "runsc version")), nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
