package sandbox

import (
	"fmt"
	"os"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/pelletier/go-toml/v2"
)

// shimConfig is the part of gVisor's runsc.toml (the ConfigPath of a
// handler written for containerd-shim-runsc-v1) that applies here: its
// [runsc_config] keys become runsc flags of the sandbox. The shim's own
// settings (binary_name, root, log_path, grouping) belong to the shim this
// distribution replaces and are ignored.
type shimConfig struct {
	RunscConfig map[string]any `toml:"runsc_config"`
}

// RunscFlagsFromOptions reads the runsc flags of a gVisor-shim style (or drop-in)
// handler from its runtime options (TypeUrl/ConfigPath). No options or no
// ConfigPath means no extra flags.
func RunscFlagsFromOptions(a typeurl.Any) (map[string]string, error) {
	if a == nil || a.GetTypeUrl() == "" || !typeurl.Is(a, &runtimeoptions.Options{}) {
		return nil, nil
	}
	var o runtimeoptions.Options
	if err := typeurl.UnmarshalTo(a, &o); err != nil {
		return nil, fmt.Errorf("runtime options: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var cfg shimConfig
	switch {
	case o.ConfigPath != "":
		data, err := os.ReadFile(o.ConfigPath)
		if err != nil {
			return nil, fmt.Errorf("runsc config %s (ConfigPath of the runtime handler): %v: %w", o.ConfigPath, err, errdefs.ErrInvalidArgument)
		}
		if err := toml.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("runsc config %s: %v: %w", o.ConfigPath, err, errdefs.ErrInvalidArgument)
		}
	case o.ConfigBody != nil:
		if err := toml.Unmarshal(o.ConfigBody, &cfg); err != nil {
			return nil, fmt.Errorf("runsc config body of the runtime handler: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if len(cfg.RunscConfig) == 0 {
		return nil, nil
	}
	flags := make(map[string]string, len(cfg.RunscConfig))
	for k, v := range cfg.RunscConfig {
		switch v.(type) {
		case string, bool, int64, float64:
			flags[k] = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("runsc config: [runsc_config] %q must be a string, boolean or number: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return flags, nil
}
