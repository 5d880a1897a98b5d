package sandbox

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestAnnotationPolicyCheck(t *testing.T) {
	open := AnnotationPolicy{AllowedBundles: []string{"experimental-high-performance"}, AllowFlagOverrides: true}
	closed := AnnotationPolicy{}
	for _, tc := range []struct {
		name   string
		policy AnnotationPolicy
		key    string
		value  string
		ok     bool
	}{
		{"not ours", closed, "example.com/x", "y", true},
		{"internal checkpoint", open, "dev.gvisor.internal.checkpoint.path", "/tmp", false},
		{"internal nvproxy", open, "dev.gvisor.internal.nvproxy", "true", false},
		{"bundle closed", closed, "dev.gvisor.bundle.experimental-high-performance", "true", false},
		{"bundle allowed", open, "dev.gvisor.bundle.experimental-high-performance", "true", true},
		{"bundle allowed, not true", open, "dev.gvisor.bundle.experimental-high-performance", "false", false},
		{"bundle not listed", open, "dev.gvisor.bundle.other", "true", false},
		{"flag closed", closed, "dev.gvisor.flag.debug", "true", false},
		{"flag open", open, "dev.gvisor.flag.debug", "true", true},
		{"flag reserved", open, "dev.gvisor.flag.network", "host", false},
		{"flag root", open, "dev.gvisor.flag.root", "/", false},
		{"flag malformed", open, "dev.gvisor.flag.-x", "1", false},
		{"mount hint", closed, "dev.gvisor.spec.mount.vol.share", "pod", true},
		{"mount hint bad field", closed, "dev.gvisor.spec.mount.vol.evil", "x", false},
		{"mount hint bad shape", closed, "dev.gvisor.spec.mount.vol", "x", false},
		{"cgroup parent", open, "dev.gvisor.spec.cgroup-parent", "/", false},
		{"rootfs source", open, "dev.gvisor.spec.rootfs.source", "/etc/shadow", false},
		{"tar upper", open, "dev.gvisor.tar.rootfs.upper", "/etc", false},
		{"name remap", open, "dev.gvisor.container-name-remap.1", "a=b", false},
		{"unknown", open, "dev.gvisor.foo", "bar", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.key, tc.value)
			if tc.ok {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tc.key, err)
				}
				return
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Check(%q) = %v, want InvalidArgument", tc.key, err)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
}

func TestPodAnnotations(t *testing.T) {
	pod := map[string]string{
		"dev.gvisor.bundle.experimental-high-performance": "true",
		"dev.gvisor.flag.debug":                           "true",
		"example.com/team":                                "a",
		"io.kubernetes.cri.sandbox-id":                    "spoof",
	}
	open := AnnotationPolicy{AllowedBundles: []string{"experimental-high-performance"}, AllowFlagOverrides: true}
	for _, tc := range []struct {
		name    string
		pod     map[string]string
		globs   []string
		policy  AnnotationPolicy
		want    []string // keys passed
		wantErr string   // key named in an InvalidArgument error
	}{
		{name: "no allowlist: nothing passes", pod: pod, want: nil},
		{name: "no allowlist: internal refused", pod: map[string]string{"dev.gvisor.internal.checkpoint.path": "/x"}, wantErr: "dev.gvisor.internal.checkpoint.path"},
		{name: "internal named first", pod: map[string]string{"dev.gvisor.bundle.x": "true", "dev.gvisor.internal.nvproxy": "true"}, globs: []string{"dev.gvisor.*"}, wantErr: "dev.gvisor.internal.nvproxy"},
		{name: "allowlist, closed policy: bundle refused", pod: pod, globs: []string{"dev.gvisor.*"}, wantErr: "dev.gvisor.bundle.experimental-high-performance"},
		{name: "allowlist, open policy", pod: pod, globs: []string{"dev.gvisor.*"}, policy: open, want: []string{"dev.gvisor.bundle.experimental-high-performance", "dev.gvisor.flag.debug"}},
		{name: "glob per key", pod: pod, globs: []string{"dev.gvisor.flag.*", "example.com/*"}, policy: open, want: []string{"dev.gvisor.flag.debug", "example.com/team"}},
		{name: "CRI's own keys never", pod: pod, globs: []string{"*", "*/*"}, policy: open, want: []string{"dev.gvisor.bundle.experimental-high-performance", "dev.gvisor.flag.debug", "example.com/team"}},
		{name: "a star glob matches across dots (path.Match)", pod: map[string]string{"dev.gvisor.spec.cgroup-parent": "/"}, globs: []string{"dev.gvisor.*"}, wantErr: "dev.gvisor.spec.cgroup-parent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := podAnnotations(tc.pod, tc.globs, tc.policy)
			if tc.wantErr != "" {
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want InvalidArgument naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("passed %v, want keys %v", got, tc.want)
			}
			for _, k := range tc.want {
				if _, ok := got[k]; !ok {
					t.Errorf("%s did not pass (got %v)", k, got)
				}
			}
		})
	}
}

func TestHandlersFromCRIConfig(t *testing.T) {
	// The JSON form of CRI's internal RuntimeConfig.
	raw := `{"containerd":{"defaultRuntimeName":"runc","runtimes":{
		"runsc":{"runtimeType":"io.containerd.runsc.v1","sandboxer":"runsc","PodAnnotations":["dev.gvisor.*"],"ContainerAnnotations":["x/*"]},
		"runc":{"runtimeType":"io.containerd.runc.v2","sandboxer":"podsandbox"}}}}`
	var cfg any
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	h, err := HandlersFromCRIConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := h["runsc"]; got.Sandboxer != "runsc" || len(got.PodAnnotations) != 1 || got.PodAnnotations[0] != "dev.gvisor.*" || got.ContainerAnnotations[0] != "x/*" {
		t.Errorf("runsc handler = %+v", got)
	}
}

func TestHandlerOf(t *testing.T) {
	c := &Controller{}
	c.SetHandlers(map[string]HandlerConfig{
		"runsc":       {RuntimeType: "io.containerd.runsc.v1", Sandboxer: "runsc", PodAnnotations: []string{"a"}},
		"runsc-other": {RuntimeType: "io.containerd.runsc.v1", Sandboxer: "runsc", PodAnnotations: []string{"b"}},
	})
	// CRI's metadata extension names the handler.
	md := `{"Version":"v1","Metadata":{"ID":"x","RuntimeHandler":"runsc-other"}}`
	info := sandbox.Sandbox{ID: "x", Extensions: map[string]typeurl.Any{"metadata": &anypb.Any{TypeUrl: "x", Value: []byte(md)}}}
	info.Runtime.Name = "io.containerd.runsc.v1"
	if name, h, ok := c.handlerOf(info); !ok || name != "runsc-other" || h.PodAnnotations[0] != "b" {
		t.Errorf("handlerOf = %s %+v %v, want runsc-other", name, h, ok)
	}
	// Without it, two handlers of the same type are ambiguous: none.
	info.Extensions = nil
	if _, _, ok := c.handlerOf(info); ok {
		t.Error("ambiguous handler resolved")
	}
}
