//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shimless/shimless/integration/harness"
)

// gVisorNodeConfig is a node configured for gVisor's shim as gVisor
// documents it, in containerd 2.x's config version 3: the runsc handler of
// gVisor's containerd quick start
// (https://gvisor.dev/docs/user_guide/containerd/quick_start/,
// `runtime_type = "io.containerd.runsc.v1"` under the CRI plugin's
// runtimes, whose 2.x table is 'io.containerd.cri.v1.runtime') with the
// options table of gVisor's containerd configuration page
// (https://gvisor.dev/docs/user_guide/containerd/configuration/:
// TypeUrl "io.containerd.runsc.v1.options", ConfigPath to a runsc.toml).
// RUNSC_TOML stands for /etc/containerd/runsc.toml.
const gVisorNodeConfig = `version = 3

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
  runtime_type = "io.containerd.runsc.v1"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
  TypeUrl = "io.containerd.runsc.v1.options"
  ConfigPath = "RUNSC_TOML"
`

// gVisorRunscTOML is a runsc.toml as gVisor's configuration page writes
// one: shim settings at the top level, runsc flags under [runsc_config].
const gVisorRunscTOML = `log_level = "debug"
log_path = "/var/log/runsc/%ID%/shim.log"
[runsc_config]
  net-raw = "true"
`

// The two ways docs/migrating.md moves a gVisor-shim node to shimless,
// as edits of gVisorNodeConfig; "unchanged" is the config as it was.
var migrations = []struct {
	name string
	edit func(config, runscTOML string) string
	// sandboxer: the handler runs on shimless's sandbox controller, whose
	// verbose pod status lists the sandbox's runsc flags.
	sandboxer bool
	// noFlags: runsc.toml without [runsc_config], the control showing
	// that CAP_NET_RAW comes from net-raw.
	noFlags bool
}{
	{"unchanged", func(c, _ string) string { return c }, false, false},
	{"control-without-runsc_config", func(c, _ string) string { return c }, false, true},
	{"sandboxer", func(c, _ string) string {
		return strings.Replace(c, "  runtime_type = \"io.containerd.runsc.v1\"\n",
			"  runtime_type = \"io.containerd.runsc.v1\"\n  sandboxer = \"runsc\"\n  disable_pause_image_pull = true\n", 1)
	}, true, false},
	{"plugin-table", func(c, runscTOML string) string {
		c, _, _ = strings.Cut(c, "\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]")
		c = strings.Replace(c, "  runtime_type = \"io.containerd.runsc.v1\"\n",
			"  runtime_type = \"io.containerd.runsc.v1\"\n  sandboxer = \"runsc\"\n  disable_pause_image_pull = true\n", 1)
		_, flags, _ := strings.Cut(runscTOML, "[runsc_config]\n")
		return c + "\n[plugins.'io.containerd.shimless.v1.runsc'.runsc_config]\n" + flags
	}, true, false},
}

// TestMigrationFromGVisorShim: a node configured for gVisor's shim, taken
// as is and after each change docs/migrating.md describes, runs a runsc pod
// whose container prints; runsc.toml's [runsc_config] net-raw reaches runsc
// (the container keeps CAP_NET_RAW, which runsc drops without --net-raw;
// on the sandbox controller the pod's runsc flags say so too), and nothing
// is left after the pod is removed.
func TestMigrationFromGVisorShim(t *testing.T) {
	harness.RequireRoot(t)
	for _, m := range migrations {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			runscTOML := filepath.Join(dir, "runsc.toml")
			toml := gVisorRunscTOML
			if m.noFlags {
				toml, _, _ = strings.Cut(toml, "[runsc_config]")
			}
			if err := os.WriteFile(runscTOML, []byte(toml), 0o644); err != nil {
				t.Fatal(err)
			}
			config := m.edit(strings.ReplaceAll(gVisorNodeConfig, "RUNSC_TOML", runscTOML), gVisorRunscTOML)
			configPath := filepath.Join(dir, "config.toml")
			if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("config.toml:\n%s", config)
			d := harness.Start(t, harness.Options{ConfigFile: configPath})
			pod := d.PodConfig("migrated-" + m.name)
			podID := d.RunPod(pod, "runsc")
			if m.sandboxer {
				st := podState(t, d, podID)
				if st.Info["runtime"] != "runsc" || !strings.Contains(st.Info["runscFlags"], `"net-raw":"true"`) {
					t.Errorf("pod not on the runsc sandboxer with net-raw: runtime=%q runscFlags=%q", st.Info["runtime"], st.Info["runscFlags"])
				}
			}
			c := harness.ContainerConfig("caps", "sh", "-c", "echo migrated; grep CapEff /proc/self/status")
			id := d.StartContainer(podID, pod, c)
			if code := d.WaitExited(id, 30*time.Second).ExitCode; code != 0 {
				t.Errorf("exit code %d", code)
			}
			lines, err := d.ContainerLog(pod, c)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(lines, "stdout migrated") {
				t.Errorf("log %q lacks the container's output", lines)
			}
			const capNetRaw = 13
			var capEff uint64
			found := false
			for _, l := range lines {
				if v, ok := strings.CutPrefix(l, "stdout CapEff:"); ok {
					capEff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
					found = err == nil
				}
			}
			switch {
			case !found:
				t.Errorf("no CapEff in the log %q", lines)
			case m.noFlags && capEff&(1<<capNetRaw) != 0:
				t.Errorf("container has CAP_NET_RAW (CapEff %x) without net-raw", capEff)
			case !m.noFlags && capEff&(1<<capNetRaw) == 0:
				t.Errorf("container lacks CAP_NET_RAW (CapEff %x): net-raw did not reach runsc", capEff)
			}
			stopAndRemove(t, d, podID)
			if leaks := d.Leaks(); len(leaks) > 0 {
				t.Errorf("after pod removal, still on the host:\n%s", strings.Join(leaks, "\n"))
			}
		})
	}
}
