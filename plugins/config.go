// Package plugins registers shimless's plugins with containerd and defines
// their configuration. Logic lives in sandbox/ and runtime/.
package plugins

import (
	"fmt"
	"github.com/shimless/shimless/sandbox"
	"path/filepath"
	"regexp"
	"time"

	"github.com/containerd/plugin"
)

// CorePlugin is the plugin type of the shared runsc core: the set of runsc
// sandboxes that the sandbox controller and the task runtime are two views
// of. It is a type of its own so that the wrapped "task" runtime can require
// it without requiring its own type or the sandbox controllers (CRI's
// podsandbox controller requires the tasks service, which requires "task").
const CorePlugin plugin.Type = "io.containerd.shimless.v1"

// ID is the id of every shimless registration.
const ID = "runsc"

// DefaultStopTimeout bounds how long Stop waits for a sandbox to exit after
// SIGTERM/SIGKILL before the whole process tree is killed by force.
const DefaultStopTimeout = 10 * time.Second

// Config is the operator-facing configuration of the runsc plugins, at
// [plugins.'io.containerd.shimless.v1.runsc'] in config.toml.
type Config struct {
	// RunscPath is the runsc binary. A bare name is looked up next to the
	// containerd binary first, then in PATH.
	RunscPath string `toml:"runsc_path"`
	// PausePath is the shimless-pause binary, the root process of every
	// sandbox. A bare name is looked up like runsc_path.
	PausePath string `toml:"pause_path"`
	// RunscRoot is runsc's --root (its state directory). Empty means
	// "<plugin state dir>/runsc".
	RunscRoot string `toml:"runsc_root"`
	// RunscConfig holds extra runsc global flags, flag name to value, as in
	// the [runsc_config] table of gVisor's runsc.toml (e.g. platform =
	// "systrap", "net-raw" = "true").
	RunscConfig map[string]string `toml:"runsc_config"`
	// StopTimeout is how long a sandbox gets to exit before it is torn down
	// by force, as a Go duration ("10s").
	StopTimeout string `toml:"stop_timeout"`
	// DebugLogDir, when set, makes runsc write a debug log per invocation
	// under this directory (runsc --debug --debug-log=DIR/).
	DebugLogDir string `toml:"debug_log_dir"`
	// AllowedBundles are the gVisor config bundles
	// (dev.gvisor.bundle.<name> = "true") a pod may ask for, when the CRI
	// handler's pod_annotations also let the annotation through. Default:
	// none.
	AllowedBundles []string `toml:"allowed_bundles"`
	// AllowPodFlagOverrides lets pods set runsc flags with
	// dev.gvisor.flag.<name> annotations (still only the flags runsc
	// allows without --allow-flag-override, unless runsc_config sets it).
	// Default: false.
	AllowPodFlagOverrides bool `toml:"allow_pod_flag_overrides"`
	// SandboxMemoryOverhead is what a pod's sandbox may use beyond the sum
	// of its containers' memory limits, in bytes, when shimless sets the
	// sandbox cgroup's limit (pods without a kubelet cgroup parent whose
	// containers all have limits). Default 32 MiB.
	SandboxMemoryOverhead int64 `toml:"sandbox_memory_overhead"`
}

// DefaultConfig is the configuration printed by `containerd config default`.
func DefaultConfig() *Config {
	return &Config{
		RunscPath:      "runsc",
		PausePath:      "shimless-pause",
		RunscConfig:    map[string]string{},
		StopTimeout:    DefaultStopTimeout.String(),
		AllowedBundles: []string{},

		SandboxMemoryOverhead: sandbox.DefaultMemoryOverhead,
	}
}

// runscFlagName is what a runsc global flag looks like without its dashes.
var runscFlagName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// reservedFlags are set by shimless itself; setting them in runsc_config
// would fight the controller.
var reservedFlags = map[string]string{
	"root":      "runsc_root",
	"debug-log": "debug_log_dir",
	"debug":     "debug_log_dir",
}

// Validate checks every value and names the offending key in its error.
func (c *Config) Validate() error {
	if c.RunscPath == "" {
		return fmt.Errorf("runsc_path: must not be empty")
	}
	if c.PausePath == "" {
		return fmt.Errorf("pause_path: must not be empty")
	}
	if c.RunscRoot != "" && !filepath.IsAbs(c.RunscRoot) {
		return fmt.Errorf("runsc_root: must be an absolute path, got %q", c.RunscRoot)
	}
	if c.DebugLogDir != "" && !filepath.IsAbs(c.DebugLogDir) {
		return fmt.Errorf("debug_log_dir: must be an absolute path, got %q", c.DebugLogDir)
	}
	if _, err := c.StopTimeoutDuration(); err != nil {
		return err
	}
	for _, b := range c.AllowedBundles {
		if !runscFlagName.MatchString(b) {
			return fmt.Errorf("allowed_bundles: %q is not a gVisor bundle name (e.g. \"experimental-high-performance\")", b)
		}
	}
	for k := range c.RunscConfig {
		if !runscFlagName.MatchString(k) {
			return fmt.Errorf("runsc_config: %q is not a runsc flag name (write it without dashes, e.g. platform = \"systrap\")", k)
		}
		if use, ok := reservedFlags[k]; ok {
			return fmt.Errorf("runsc_config: %q is set by shimless; use %s instead", k, use)
		}
	}
	if c.SandboxMemoryOverhead < 0 {
		return fmt.Errorf("sandbox_memory_overhead: %d is negative", c.SandboxMemoryOverhead)
	}
	return nil
}

// StopTimeoutDuration parses stop_timeout.
func (c *Config) StopTimeoutDuration() (time.Duration, error) {
	if c.StopTimeout == "" {
		return DefaultStopTimeout, nil
	}
	d, err := time.ParseDuration(c.StopTimeout)
	if err != nil {
		return 0, fmt.Errorf("stop_timeout: %q is not a duration (e.g. \"10s\"): %w", c.StopTimeout, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("stop_timeout: must be positive, got %q", c.StopTimeout)
	}
	return d, nil
}

// defaultRunscFlags are runsc flags shimless sets unless runsc_config says
// otherwise. oci-seccomp: a container's OCI seccomp profile (RuntimeDefault
// or Localhost, as CRI puts it in the spec) is enforced inside the sandbox,
// on top of gVisor's own host filter; a container without one is
// unaffected. Set "oci-seccomp" = "false" to turn it off.
var defaultRunscFlags = map[string]string{"oci-seccomp": "true"}

// RunscFlags are the global runsc flags: the defaults, then runsc_config.
func (c *Config) RunscFlags() map[string]string {
	flags := make(map[string]string, len(defaultRunscFlags)+len(c.RunscConfig))
	for k, v := range defaultRunscFlags {
		flags[k] = v
	}
	for k, v := range c.RunscConfig {
		flags[k] = v
	}
	return flags
}
