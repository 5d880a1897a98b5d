package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/pelletier/go-toml/v2"
)

// RunscHandlers are the three ways operators configure a gVisor handler:
// our plugin config (sandboxer runsc, no options), gVisor's drop-in
// (sandboxer runsc plus options with ConfigPath), and shim style (default
// podsandbox sandboxer, pause image, options with ConfigPath).
var RunscHandlers = []string{"runsc", "runsc-dropin", "runsc-shim-style"}

// Config is what the generated containerd config needs.
type Config struct {
	Dir, Root, State, Address string
	RunscPath                 string
	RuncPath                  string
	// ShimlessConfig is extra TOML for the shimless plugin table.
	ShimlessConfig string
	// RunscPodAnnotations is a TOML array for the runsc handler's
	// pod_annotations ("" = unset).
	RunscPodAnnotations string
	// ExtraConfig is extra top-level TOML (e.g. a [metrics] table),
	// appended after everything else.
	ExtraConfig    string
	Bridge, Subnet string
}

const configTemplate = `version = 3
root = "{{.Root}}"
state = "{{.State}}"

[grpc]
  address = "{{.Address}}"

[debug]
  level = "debug"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "shimless.test/pause:latest"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{{.RuncPath}}"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
      runtime_type = "io.containerd.runsc.v1"
      sandboxer = "runsc"
      disable_pause_image_pull = true
      {{if .RunscPodAnnotations}}pod_annotations = {{.RunscPodAnnotations}}{{end}}
    # gVisor's documented drop-in for containerd 2.x: the runsc sandboxer
    # plus the shim's options table pointing at a runsc.toml.
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc-dropin]
      runtime_type = "io.containerd.runsc.v1"
      sandboxer = "runsc"
      disable_pause_image_pull = true
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc-dropin.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = "{{.Dir}}/runsc.toml"
    # A handler as written for gVisor's shim (containerd-shim-runsc-v1):
    # default podsandbox sandboxer, options pointing at a runsc.toml.
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc-shim-style]
      runtime_type = "io.containerd.runsc.v1"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc-shim-style.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = "{{.Dir}}/runsc.toml"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{{.Dir}}/net.d"
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.shimless.v1.runsc']
  runsc_path = "{{.RunscPath}}"
{{.ShimlessConfig}}
{{.ExtraConfig}}
`

// The pods' network: a bridge with host-local addresses, no masquerade and
// no route out, so traffic stays between the host and the pods.
const cniTemplate = `{
  "cniVersion": "1.0.0",
  "name": "{{.Bridge}}",
  "plugins": [{
    "type": "bridge",
    "bridge": "{{.Bridge}}",
    "isGateway": true,
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "dataDir": "{{.Dir}}/ipam",
      "ranges": [[{"subnet": "{{.Subnet}}"}]]
    }
  }]
}
`

// runscTOML is the gVisor shim's config file for the shim-style handler.
const runscTOML = `# containerd-shim-runsc-v1 settings; only [runsc_config] applies to shimless.
binary_name = "/usr/local/bin/runsc"
[runsc_config]
  net-raw = "true"
`

// WriteConfig writes Dir/config.toml, Dir/runsc.toml and the CNI config
// under Dir/net.d.
func WriteConfig(c Config) error {
	for _, f := range []struct{ path, tmpl string }{
		{filepath.Join(c.Dir, "config.toml"), configTemplate},
		{filepath.Join(c.Dir, "runsc.toml"), runscTOML},
		{filepath.Join(c.Dir, "net.d", "10-shimless.conflist"), cniTemplate},
	} {
		var buf bytes.Buffer
		if err := template.Must(template.New("").Parse(f.tmpl)).Execute(&buf, c); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tomlStrings renders a TOML array of strings; "" for nil.
func tomlStrings(v []string) string {
	if v == nil {
		return ""
	}
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// AdaptConfig reads an operator's containerd config (src) and writes it to
// dst with only what a test daemon needs changed: its root, state and
// socket under c.Dir, the harness's CNI network (c.Dir/net.d, Debian's
// plugins in /usr/lib/cni), network namespaces under the state dir, a
// stream server on a free port, debug logging, restrict_oom_score_adj (a
// host limit) and, unless the config pins one, the offline test pause image
// as the sandbox image. Handlers and the
// shimless plugin table are kept as written.
func AdaptConfig(src, dst string, c Config) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	cfg := map[string]any{}
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	cfg["root"], cfg["state"] = c.Root, c.State
	table(cfg, "grpc")["address"] = c.Address
	table(cfg, "debug")["level"] = "debug"
	plugins := table(cfg, "plugins")
	criRuntime := table(plugins, "io.containerd.cri.v1.runtime")
	criRuntime["netns_mounts_under_state_dir"] = true
	// root lacks CAP_SYS_RESOURCE on the test hosts: lowering a pause
	// container's oom_score_adj fails (the generated config sets it too).
	criRuntime["restrict_oom_score_adj"] = true
	cni := table(criRuntime, "cni")
	cni["bin_dirs"] = []string{"/usr/lib/cni"}
	cni["conf_dir"] = filepath.Join(c.Dir, "net.d")
	cni["max_conf_num"] = 1
	cri := table(plugins, "io.containerd.grpc.v1.cri")
	cri["stream_server_address"], cri["stream_server_port"] = "127.0.0.1", "0"
	pinned := table(table(plugins, "io.containerd.cri.v1.images"), "pinned_images")
	if _, ok := pinned["sandbox"]; !ok {
		pinned["sandbox"] = "shimless.test/pause:latest"
	}
	out, err := toml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, out, 0o644)
}

// table returns m[key] as a TOML table, creating it when absent.
func table(m map[string]any, key string) map[string]any {
	if t, ok := m[key].(map[string]any); ok {
		return t
	}
	t := map[string]any{}
	m[key] = t
	return t
}
