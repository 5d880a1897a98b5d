// Package sandbox is the runsc sandbox controller: it runs one runsc
// sandbox per pod, directly, with no shim process. The Controller owns the
// set of sandboxes; the sandbox controller plugin and the task runtime are
// two views on that one set.
package sandbox

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/log"

	"github.com/shimless/shimless/sandbox/runsc"
)

// Options configure a Controller.
type Options struct {
	// Runsc talks to runsc; its Root is where runsc keeps its state.
	Runsc *runsc.Client
	// StateDir holds transient files (bundles, sockets); RootDir holds
	// records that must survive a reboot of containerd.
	StateDir, RootDir string
	// StopTimeout bounds a graceful stop before the process tree is killed.
	StopTimeout time.Duration
	// Publisher is containerd's event exchange.
	Publisher events.Publisher
}

// Controller implements containerd's sandbox.Controller on runsc.
type Controller struct {
	opts         Options
	runscVersion string
}

// New checks that runsc is usable and prepares the controller's
// directories.
func New(ctx context.Context, opts Options) (*Controller, error) {
	version, err := opts.Runsc.Version(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{opts.StateDir, opts.RootDir, opts.Runsc.Root} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	log.G(ctx).WithFields(log.Fields{"runsc": opts.Runsc.Path, "version": version, "root": opts.Runsc.Root}).Info("runsc sandbox controller ready")
	return &Controller{opts: opts, runscVersion: version}, nil
}

// OwnsSandbox reports whether id is one of this controller's sandboxes.
func (c *Controller) OwnsSandbox(id string) bool {
	return false
}
