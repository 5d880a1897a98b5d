package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
)

func TestRunscFlagsFromOptions(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "runsc.toml")
	if err := os.WriteFile(good, []byte("binary_name = \"/usr/bin/runsc\"\nlog_path = \"/tmp/%ID%\"\n[runsc_config]\n  platform = \"systrap\"\n  net-raw = \"true\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[runsc_config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	anyOf := func(o *runtimeoptions.Options) typeurl.Any {
		a, err := typeurl.MarshalAny(o)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name    string
		in      typeurl.Any
		want    map[string]string
		wantErr string
	}{
		{"no options", nil, nil, ""},
		{"no config path", anyOf(&runtimeoptions.Options{TypeUrl: "io.containerd.runsc.v1.options"}), nil, ""},
		{"config path", anyOf(&runtimeoptions.Options{TypeUrl: "io.containerd.runsc.v1.options", ConfigPath: good}), map[string]string{"platform": "systrap", "net-raw": "true"}, ""},
		{"config body", anyOf(&runtimeoptions.Options{ConfigBody: []byte("[runsc_config]\ndebug = \"true\"\n")}), map[string]string{"debug": "true"}, ""},
		{"typed values as gVisor's docs write them", anyOf(&runtimeoptions.Options{ConfigBody: []byte("[runsc_config]\nnet-raw = true\nnum-network-channels = 2\n")}), map[string]string{"net-raw": "true", "num-network-channels": "2"}, ""},
		{"table value", anyOf(&runtimeoptions.Options{ConfigBody: []byte("[runsc_config]\nx = [1]\n")}), nil, "must be a string"},
		{"missing file", anyOf(&runtimeoptions.Options{ConfigPath: filepath.Join(dir, "nope.toml")}), nil, "nope.toml"},
		{"broken file", anyOf(&runtimeoptions.Options{ConfigPath: bad}), nil, "bad.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RunscFlagsFromOptions(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error naming %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
