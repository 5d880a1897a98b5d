package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/sandbox/runsc"
)

// testController is a controller over temp dirs; Create runs no runsc.
func testController(t *testing.T, policy AnnotationPolicy, globs []string) *Controller {
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Runsc:    &runsc.Client{Root: filepath.Join(dir, "runsc")},
		StateDir: filepath.Join(dir, "state"), RootDir: filepath.Join(dir, "root"), CRIRootDir: filepath.Join(dir, "cri"),
		HostsFile: hosts, ResolvConf: hosts, Policy: policy,
	}
	for _, d := range []string{opts.StateDir, opts.RootDir, opts.CRIRootDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	c := &Controller{opts: opts, runsc: opts.Runsc, rootfs: filepath.Join(opts.StateDir, "rootfs"), sandboxes: map[string]*Sandbox{}}
	c.SetHandlers(map[string]HandlerConfig{"runsc": {RuntimeType: "io.containerd.runsc.v1", Sandboxer: "runsc", PodAnnotations: globs}})
	return c
}

func createWith(t *testing.T, c *Controller, id string, cfg *runtimeapi.PodSandboxConfig) error {
	t.Helper()
	opt, err := typeurl.MarshalAny(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	info := sandbox.Sandbox{ID: id, Sandboxer: "runsc"}
	info.Runtime.Name = "io.containerd.runsc.v1"
	return c.Create(ctx, info, sandbox.WithOptions(opt), sandbox.WithNetNSPath("/var/run/netns/x"))
}

func treeEntries(t *testing.T, dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		filepath.Walk(d, func(p string, _ os.FileInfo, _ error) error {
			if p != d {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// TestCreateRefusesWithoutLeftovers: a refused Create is InvalidArgument,
// leaves no file and no sandbox behind, and the same controller still
// creates a valid sandbox whose spec has only the allowed annotations.
func TestCreateRefusesWithoutLeftovers(t *testing.T) {
	c := testController(t, AnnotationPolicy{}, []string{"dev.gvisor.*"})
	ok := func() *runtimeapi.PodSandboxConfig {
		return &runtimeapi.PodSandboxConfig{Hostname: "pod", Linux: &runtimeapi.LinuxPodSandboxConfig{}}
	}
	for name, tc := range map[string]struct {
		id  string
		cfg func() *runtimeapi.PodSandboxConfig
	}{
		"reserved id":  {"rootfs", ok},
		"traversal id": {"../x", ok},
		"dash id":      {"-x", ok},
		"empty id":     {"", ok},
		"private id":   {"shimless-x", ok},
		"internal annotation": {"a1", func() *runtimeapi.PodSandboxConfig {
			p := ok()
			p.Annotations = map[string]string{"dev.gvisor.internal.checkpoint.path": "/x"}
			return p
		}},
		"flag override": {"a2", func() *runtimeapi.PodSandboxConfig {
			p := ok()
			p.Annotations = map[string]string{"dev.gvisor.flag.debug": "true"}
			return p
		}},
		"negative quota": {"a3", func() *runtimeapi.PodSandboxConfig {
			p := ok()
			p.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuQuota: -9}
			return p
		}},
		"dns injection": {"a4", func() *runtimeapi.PodSandboxConfig {
			p := ok()
			p.DnsConfig = &runtimeapi.DNSConfig{Options: []string{"x\nnameserver 1.2.3.4"}}
			return p
		}},
	} {
		t.Run(name, func(t *testing.T) {
			err := createWith(t, c, tc.id, tc.cfg())
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Create = %v, want InvalidArgument", err)
			}
			if left := treeEntries(t, c.opts.StateDir, c.opts.RootDir, c.opts.CRIRootDir); len(left) > 0 {
				t.Fatalf("left behind: %v", left)
			}
			if len(c.sandboxes) != 0 {
				t.Fatalf("sandboxes: %v", c.sandboxes)
			}
		})
	}

	p := ok()
	p.Annotations = map[string]string{"dev.gvisor.spec.mount.v.share": "pod", "example.com/x": "y"}
	if err := createWith(t, c, "good", p); err != nil {
		t.Fatal(err)
	}
	spec, err := ReadSpec(c.bundleDir("good"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Annotations["dev.gvisor.spec.mount.v.share"] != "pod" {
		t.Errorf("allowed mount hint missing: %v", spec.Annotations)
	}
	if _, ok := spec.Annotations["example.com/x"]; ok {
		t.Errorf("annotation outside pod_annotations passed: %v", spec.Annotations)
	}
	for path, want := range map[string]os.FileMode{
		c.bundleDir("good"): 0o711,
		filepath.Join(c.bundleDir("good"), "config.json"): 0o600,
		c.recordPath("good"):                              0o600,
	} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %o", path, fi.Mode(), err, want)
		}
	}
	// Lookups of ids that cannot exist are InvalidArgument, of unknown
	// valid ids NotFound.
	ctx := context.Background()
	if _, err := c.Status(ctx, "../x", false); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Status(../x) = %v", err)
	}
	if err := c.Shutdown(ctx, "rootfs"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Shutdown(rootfs) = %v", err)
	}
	if _, err := c.Start(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Errorf("Start(nope) = %v", err)
	}
}
