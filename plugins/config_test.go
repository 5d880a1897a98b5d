package plugins

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; empty means valid
	}{
		{"default", func(*Config) {}, ""},
		{"empty runsc path", func(c *Config) { c.RunscPath = "" }, "runsc_path"},
		{"empty pause path", func(c *Config) { c.PausePath = "" }, "pause_path"},
		{"relative root", func(c *Config) { c.RunscRoot = "run/runsc" }, "runsc_root"},
		{"absolute root", func(c *Config) { c.RunscRoot = "/run/runsc" }, ""},
		{"relative debug dir", func(c *Config) { c.DebugLogDir = "logs" }, "debug_log_dir"},
		{"bad timeout", func(c *Config) { c.StopTimeout = "ten" }, "stop_timeout"},
		{"negative timeout", func(c *Config) { c.StopTimeout = "-1s" }, "stop_timeout"},
		{"zero timeout", func(c *Config) { c.StopTimeout = "0s" }, "stop_timeout"},
		{"empty timeout means default", func(c *Config) { c.StopTimeout = "" }, ""},
		{"flag with dashes", func(c *Config) { c.RunscConfig["--platform"] = "systrap" }, "runsc_config"},
		{"reserved flag", func(c *Config) { c.RunscConfig["root"] = "/x" }, "runsc_root"},
		{"good flag", func(c *Config) { c.RunscConfig["net-raw"] = "true" }, ""},
		{"allowed bundle", func(c *Config) { c.AllowedBundles = []string{"experimental-high-performance"} }, ""},
		{"malformed bundle", func(c *Config) { c.AllowedBundles = []string{"a b"} }, "allowed_bundles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("expected error naming %q, got none", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not name %q", err, tc.wantErr)
			}
		})
	}
}

func TestStopTimeoutDefault(t *testing.T) {
	c := &Config{}
	d, err := c.StopTimeoutDuration()
	if err != nil || d != 10*time.Second {
		t.Fatalf("got %v, %v; want 10s", d, err)
	}
}

func TestSecureDefaults(t *testing.T) {
	c := DefaultConfig()
	if len(c.AllowedBundles) != 0 || c.AllowPodFlagOverrides {
		t.Fatalf("defaults allow pod annotations: bundles %v, flag overrides %v", c.AllowedBundles, c.AllowPodFlagOverrides)
	}
}

func TestRunscFlagsDefaults(t *testing.T) {
	if got := (&Config{}).RunscFlags()["oci-seccomp"]; got != "true" {
		t.Errorf("oci-seccomp = %q by default, want true", got)
	}
	c := &Config{RunscConfig: map[string]string{"oci-seccomp": "false", "platform": "systrap"}}
	if got := c.RunscFlags(); got["oci-seccomp"] != "false" || got["platform"] != "systrap" {
		t.Errorf("runsc_config does not win over the defaults: %v", got)
	}
}
