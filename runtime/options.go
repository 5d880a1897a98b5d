package runtime

import (
	"fmt"
	"os"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"github.com/pelletier/go-toml/v2"
)

// shimConfig is the part of gVisor's runsc.toml (the ConfigPath of a
// handler written for containerd-shim-runsc-v1) that applies here: its
// [runsc_config] keys become runsc flags of the sandbox. The shim's own
// settings (binary_name, root, log_path, grouping) belong to the shim this
// distribution replaces and are ignored.
type shimConfig struct {
	RunscConfig map[string]string `toml:"runsc_config"`
}

// runscFlagsFromOptions reads the runsc flags of a gVisor-shim style
// handler from its runtime options (TypeUrl/ConfigPath). No options or no
// ConfigPath means no extra flags.
func runscFlagsFromOptions(a typeurl.Any) (map[string]string, error) {
	if a == nil || a.GetTypeUrl() == "" || !typeurl.Is(a, &runtimeoptions.Options{}) {
		return nil, nil
	}
	var o runtimeoptions.Options
	if err := typeurl.UnmarshalTo(a, &o); err != nil {
		return nil, fmt.Errorf("runtime options: %w", err)
	}
	var cfg shimConfig
	switch {
	case o.ConfigPath != "":
		data, err := os.ReadFile(o.ConfigPath)
		if err != nil {
			return nil, fmt.Errorf("runsc config %s (ConfigPath of the runtime handler): %w", o.ConfigPath, err)
		}
		if err := toml.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("runsc config %s: %w", o.ConfigPath, err)
		}
	case o.ConfigBody != nil:
		if err := toml.Unmarshal(o.ConfigBody, &cfg); err != nil {
			return nil, fmt.Errorf("runsc config body of the runtime handler: %w", err)
		}
	}
	return cfg.RunscConfig, nil
}
