package plugins

import (
	"slices"

	coreruntime "github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/log"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"github.com/shimless/shimless/runtime"
)

// stockTaskID is the id of containerd's one task runtime, which the tasks
// service looks up by id.
const stockTaskID = "task"

// InstallTaskRouter rewrites containerd's plugin registry so that the
// "task" runtime instance is a runtime.Router: runsc tasks go to the
// in-process runtime, everything else to the stock shim TaskManager.
// containerd has exactly one task runtime and a second registration of
// io.containerd.runtime.v2.task panics, so the registration itself is
// wrapped. It must run in main before containerd's command starts.
func InstallTaskRouter() {
	regs := registry.Graph(func(*plugin.Registration) bool { return false })
	registry.Reset()
	for i := range regs {
		r := regs[i]
		if r.Type == plugins.RuntimePluginV2 && r.ID == stockTaskID {
			r = routed(r)
		}
		registry.Register(&r)
	}
}

// routed wraps the stock task registration's InitFn.
func routed(stock plugin.Registration) plugin.Registration {
	r := stock
	r.Requires = append(slices.Clone(stock.Requires), CorePlugin)
	r.InitFn = func(ic *plugin.InitContext) (any, error) {
		inst, err := stock.InitFn(ic)
		if err != nil {
			return nil, err
		}
		stockRuntime := inst.(coreruntime.PlatformRuntime)
		c, err := core(ic)
		if err != nil {
			log.G(ic.Context).WithError(err).Info("runsc runtime unavailable; all tasks go to the shim runtime")
			return runtime.NewRouter(stockRuntime, nil, nil), nil
		}
		return runtime.NewRouter(stockRuntime, c.runtime, c.controller), nil
	}
	return r
}
