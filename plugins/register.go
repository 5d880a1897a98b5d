package plugins

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/events"
	csandbox "github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/log"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"github.com/shimless/shimless/runtime"
	"github.com/shimless/shimless/sandbox"
	"github.com/shimless/shimless/sandbox/runsc"
)

func init() {
	registry.Register(&plugin.Registration{
		Type:     CorePlugin,
		ID:       ID,
		Requires: []plugin.Type{plugins.EventPlugin},
		Config:   DefaultConfig(),
		InitFn:   initCore,
	})
	registry.Register(&plugin.Registration{
		Type: plugins.SandboxControllerPlugin,
		ID:   ID,
		// CRI's runtime plugin holds the handlers' pod_annotations. Like
		// containerd's podsandbox controller this requires the CRI service
		// plugins, never the CRI gRPC plugin (which requires controllers).
		Requires: []plugin.Type{CorePlugin, plugins.CRIServicePlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			c, err := core(ic)
			if err != nil {
				return nil, err
			}
			c.controller.SetHandlers(criHandlers(ic))
			return c.controller, nil
		},
	})
	registry.Register(&plugin.Registration{
		Type:     plugins.RuntimePluginV2,
		ID:       ID,
		Requires: []plugin.Type{CorePlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			c, err := core(ic)
			if err != nil {
				return nil, err
			}
			return c.runtime, nil
		},
	})
}

// initCore validates the config and probes runsc. An unusable runsc or a bad
// config skips the runsc plugins (with the reason in the log and in `ctr
// plugins ls`) instead of failing: a plain error from a sandbox controller
// would take CRI down, and runc pods must keep working.
func initCore(ic *plugin.InitContext) (any, error) {
	cfg := ic.Config.(*Config)
	l := log.G(ic.Context).WithField("plugin", string(CorePlugin)+"."+ID)
	if err := cfg.Validate(); err != nil {
		l.WithError(err).Error("invalid runsc plugin config; runsc handlers are disabled")
		return nil, fmt.Errorf("invalid config [plugins.'%s.%s']: %v: %w", CorePlugin, ID, err, plugin.ErrSkipPlugin)
	}
	stopTimeout, _ := cfg.StopTimeoutDuration()
	path, err := runsc.Resolve(cfg.RunscPath)
	if err != nil {
		l.WithError(err).Warn("runsc is not usable; runsc handlers are disabled")
		return nil, fmt.Errorf("%v: %w", err, plugin.ErrSkipPlugin)
	}
	pause, err := runsc.Resolve(cfg.PausePath)
	if err != nil {
		l.WithError(err).Warn("pause binary is not usable; runsc handlers are disabled")
		return nil, fmt.Errorf("pause_path: %v: %w", err, plugin.ErrSkipPlugin)
	}
	state, root := ic.Properties[plugins.PropertyStateDir], ic.Properties[plugins.PropertyRootDir]
	// 0711 like containerd's own state dirs: a user-namespaced sandbox's
	// gofer runs as an unprivileged host uid and must reach the pause rootfs.
	for _, d := range []string{state, root} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, err
		}
	}
	runscRoot := cfg.RunscRoot
	if runscRoot == "" {
		runscRoot = filepath.Join(state, "runsc")
	}
	exchange, err := ic.GetByID(plugins.EventPlugin, "exchange")
	if err != nil {
		return nil, err
	}
	c, err := sandbox.New(ic.Context, sandbox.Options{
		Runsc: &runsc.Client{
			Path:        path,
			Root:        runscRoot,
			Flags:       cfg.RunscFlags(),
			DebugLogDir: cfg.DebugLogDir,
		},
		PausePath: pause,
		StateDir:  filepath.Join(state, "sandboxes"),
		RootDir:   filepath.Join(root, "sandboxes"),
		// CRI's root dir, as CRI derives it (plugins/cri/runtime).
		CRIRootDir:     filepath.Join(filepath.Dir(root), "io.containerd.grpc.v1.cri"),
		StopTimeout:    stopTimeout,
		MemoryOverhead: cfg.SandboxMemoryOverhead,
		Publisher:      exchange.(events.Publisher),
		Policy: sandbox.AnnotationPolicy{
			AllowedBundles:     cfg.AllowedBundles,
			AllowFlagOverrides: cfg.AllowPodFlagOverrides,
		},
	})
	if err != nil {
		l.WithError(err).Warn("runsc is not usable; runsc handlers are disabled")
		return nil, fmt.Errorf("runsc %s: %v: %w", path, err, plugin.ErrSkipPlugin)
	}
	r, err := runtime.New(ic.Context, c, filepath.Join(state, "tasks"))
	if err != nil {
		return nil, fmt.Errorf("runsc task runtime: %w", err)
	}
	// CRI's PortForward reaches a runsc pod's port through the Sentry
	// (patch 0002): the pod's network stack is not in its netns.
	csandbox.RegisterPortDialer(c.DialPort)
	return &coreInstance{controller: c, runtime: r}, nil
}

// coreInstance is the core plugin's instance: the one controller and the
// one task runtime over the same sandboxes.
type coreInstance struct {
	controller *sandbox.Controller
	runtime    *runtime.Runtime
}

// core returns the shared instance, or a skip error carrying the reason
// the core was skipped.
func core(ic *plugin.InitContext) (*coreInstance, error) {
	p := ic.Plugins().Get(CorePlugin, ID)
	if p == nil {
		return nil, fmt.Errorf("%s.%s is not loaded: %w", CorePlugin, ID, plugin.ErrSkipPlugin)
	}
	i, err := p.Instance()
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %v: %w", CorePlugin, ID, err, plugin.ErrSkipPlugin)
	}
	return i.(*coreInstance), nil
}

// criHandlers returns the CRI runtime handlers whose sandboxer is this
// controller, from CRI's runtime plugin config. Without CRI (disabled, or
// failed) there are none, and no pod annotation reaches a sandbox spec.
func criHandlers(ic *plugin.InitContext) map[string]sandbox.HandlerConfig {
	l := log.G(ic.Context).WithField("plugin", string(plugins.SandboxControllerPlugin)+"."+ID)
	p := ic.Plugins().Get(plugins.CRIServicePlugin, "runtime")
	if p == nil || p.Config == nil {
		l.Info("no CRI runtime config; pod annotations never reach runsc sandboxes")
		return nil
	}
	all, err := sandbox.HandlersFromCRIConfig(p.Config)
	if err != nil {
		l.WithError(err).Warn("cannot read CRI runtime handlers; pod annotations never reach runsc sandboxes")
		return nil
	}
	ours := map[string]sandbox.HandlerConfig{}
	for name, h := range all {
		if h.Sandboxer == ID {
			ours[name] = h
		}
	}
	return ours
}
