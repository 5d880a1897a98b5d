package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// floorTarget does a pod's work with the runsc CLI alone: a sandbox whose
// root runs shimless-pause, a busybox container joining it, runsc exec,
// runsc kill/delete. No CRI, no CNI (the sandbox gets a new network
// namespace with loopback only), no containerd: the floor any runtime
// driving runsc pays.
type floorTarget struct {
	runsc, pause, busybox string
	dir                   string // bundles, rootfs, stdout files
	root                  string // runsc --root
	flags                 []string
}

// gVisor's CRI annotations (runsc/specutils): they make a container a
// pod's sandbox or a container joining one.
const (
	annContainerType = "io.kubernetes.cri.container-type"
	annSandboxID     = "io.kubernetes.cri.sandbox-id"
)

func newFloor(dir, runsc, pause, busybox string) (*floorTarget, error) {
	f := &floorTarget{runsc: runsc, pause: pause, busybox: busybox, dir: dir, root: filepath.Join(dir, "root")}
	// The flags shimless's runsc handler gives every sandbox.
	f.flags = []string{"--root=" + f.root, "--oci-seccomp=true"}
	return f, os.MkdirAll(f.root, 0o700)
}

func (f *floorTarget) name() string       { return "raw runsc CLI (floor)" }
func (f *floorTarget) containerdPid() int { return 0 }

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// run runs one runsc command with the given stdout (nil: /dev/null) and
// stderr to a file: a pipe would be inherited by the sandbox and keep
// Wait from returning.
func (f *floorTarget) run(ctx context.Context, stdout *os.File, args ...string) error {
	errf, err := os.CreateTemp(f.dir, "runsc-stderr-")
	if err != nil {
		return err
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	cmd := exec.CommandContext(ctx, f.runsc, append(append([]string{}, f.flags...), args...)...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Stderr = errf
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(errf.Name())
		return fmt.Errorf("runsc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}

// bundle writes dir/config.json and dir/rootfs holding the given files
// (hard links: rootfs need not be copied) and symlinks.
func (f *floorTarget) bundle(dir string, spec *specs.Spec, files map[string]string, links map[string]string) error {
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	for dst, src := range files {
		if err := os.Link(src, filepath.Join(rootfs, dst)); err != nil {
			return err
		}
	}
	for dst, target := range links {
		if err := os.Symlink(target, filepath.Join(rootfs, dst)); err != nil {
			return err
		}
	}
	spec.Root = &specs.Root{Path: rootfs}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// floorCgroupParent holds the floor's cgroups (runsc creates one per
// container in every hierarchy, as it does for CRI's /k8s.io/<id>).
const floorCgroupParent = "/shimless-bench-floor"

func baseSpec(args []string, kind, sandboxID, id string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Cwd:  "/",
			Env:  []string{"PATH=/bin"},
		},
		Hostname: "floor",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Annotations: map[string]string{annContainerType: kind, annSandboxID: sandboxID},
		Linux: &specs.Linux{
			CgroupsPath: floorCgroupParent + "/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
}

func (f *floorTarget) startPod(ctx context.Context, name string) (*pod, phases, error) {
	var ph phases
	p := &pod{id: newID(), cid: newID()}
	sdir, cdir := filepath.Join(f.dir, p.id), filepath.Join(f.dir, p.cid)
	// Bundles are written before the clock starts: CRI's equivalent
	// (image snapshots) exists before RunPodSandbox too.
	if err := f.bundle(sdir, baseSpec([]string{"/pause"}, "sandbox", p.id, p.id),
		map[string]string{"pause": f.pause}, nil); err != nil {
		return nil, ph, err
	}
	if err := f.bundle(cdir, baseSpec(containerArgs, "container", p.id, p.cid),
		map[string]string{"bin/busybox": f.busybox},
		map[string]string{"bin/sh": "busybox", "bin/sleep": "busybox", "bin/true": "busybox"}); err != nil {
		return nil, ph, err
	}
	stdout, err := os.Create(filepath.Join(cdir, "stdout"))
	if err != nil {
		return nil, ph, err
	}
	defer stdout.Close()
	t0 := time.Now()
	if err := f.run(ctx, nil, "create", "--bundle", sdir, p.id); err != nil {
		return p, ph, err
	}
	if err := f.run(ctx, nil, "start", p.id); err != nil {
		return p, ph, err
	}
	t1 := time.Now()
	if err := f.run(ctx, stdout, "create", "--bundle", cdir, p.cid); err != nil {
		return p, ph, err
	}
	t2 := time.Now()
	// A joining container's stdio is the `runsc start` process's.
	if err := f.run(ctx, stdout, "start", p.cid); err != nil {
		return p, ph, err
	}
	t3 := time.Now()
	if err := waitLine(ctx, stdout.Name()); err != nil {
		return p, ph, err
	}
	t4 := time.Now()
	return p, phases{run: t1.Sub(t0), create: t2.Sub(t1), start: t3.Sub(t2), firstLog: t4.Sub(t3)}, nil
}

func (f *floorTarget) exec(ctx context.Context, p *pod) error {
	return f.run(ctx, nil, "exec", p.cid, "true")
}

// teardown is what a runtime must do at least: kill and delete the
// container, then the sandbox.
func (f *floorTarget) teardown(ctx context.Context, p *pod) error {
	var errs []string
	for _, args := range [][]string{
		{"kill", p.cid, "KILL"},
		{"delete", "--force", p.cid},
		{"kill", p.id, "KILL"},
		{"delete", "--force", p.id},
	} {
		if err := f.run(ctx, nil, args...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removeFiles removes a torn-down pod's bundles (outside the timed part).
func (f *floorTarget) removeFiles(p *pod) {
	_ = os.RemoveAll(filepath.Join(f.dir, p.id))
	_ = os.RemoveAll(filepath.Join(f.dir, p.cid))
}

// cleanup force-deletes whatever is left under the floor's runsc root.
func (f *floorTarget) cleanup() {
	out, _ := exec.Command(f.runsc, "--root="+f.root, "list", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		_ = exec.Command(f.runsc, "--root="+f.root, "delete", "--force", id).Run()
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		_ = os.Remove(filepath.Join("/sys/fs/cgroup", e.Name(), floorCgroupParent))
	}
}
