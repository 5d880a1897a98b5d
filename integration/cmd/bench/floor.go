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
// runsc kill/delete. No CRI, no CNI, no containerd: the floor any runtime
// driving runsc pays. What a CRI pod has that runsc sets up itself is
// given to it before the clock starts, so runsc does the same work: a
// network namespace holding a veth with an address and a default route
// (CNI's bridge plugin gives a pod the same; runsc start moves it into its
// netstack, and the Sentry keeps its buffers), and the container's
// /etc/hostname, /etc/hosts, /etc/resolv.conf and /dev/shm mounts.
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
	// Bundles, the network namespace and the pod's files are made before
	// the clock starts: CRI's equivalents (image snapshots, CNI) are not
	// runsc's work.
	netns, err := floorNetNS(ctx, p.id)
	if err != nil {
		return nil, ph, err
	}
	sspec := baseSpec([]string{"/pause"}, "sandbox", p.id, p.id)
	sspec.Linux.Namespaces[4].Path = netns
	if err := f.bundle(sdir, sspec, map[string]string{"pause": f.pause}, nil); err != nil {
		return nil, ph, err
	}
	cspec := baseSpec(containerArgs, "container", p.id, p.cid)
	files := filepath.Join(f.dir, p.id+"-files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		return nil, ph, err
	}
	for name, content := range map[string]string{"hostname": "floor\n", "hosts": "127.0.0.1 localhost\n", "resolv.conf": "nameserver 127.0.0.1\n"} {
		if err := os.WriteFile(filepath.Join(files, name), []byte(content), 0o644); err != nil {
			return nil, ph, err
		}
		cspec.Mounts = append(cspec.Mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: filepath.Join(files, name), Options: []string{"rbind", "rprivate", "rw"}})
	}
	cspec.Mounts = append(cspec.Mounts, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
	if err := f.bundle(cdir, cspec,
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

// removeFiles removes a torn-down pod's bundles, files and network
// namespace (outside the timed part).
func (f *floorTarget) removeFiles(p *pod) {
	_ = os.RemoveAll(filepath.Join(f.dir, p.id))
	_ = os.RemoveAll(filepath.Join(f.dir, p.id+"-files"))
	_ = os.RemoveAll(filepath.Join(f.dir, p.cid))
	_ = exec.Command("ip", "netns", "delete", floorNetNSName(p.id)).Run()
}

// floorNetNSName is the floor pod's network namespace (under
// /var/run/netns, as ip netns makes them).
func floorNetNSName(podID string) string { return "shlbf-" + podID[:12] }

// floorNetNS makes a pod's network namespace as CNI's bridge plugin would
// leave it, without the bridge: loopback up and a veth "eth0" with an
// address and a default route; its host end is up with no address, so no
// traffic can leave. It returns the namespace's path.
func floorNetNS(ctx context.Context, podID string) (string, error) {
	ns := floorNetNSName(podID)
	host := "shlbf" + podID[:8]
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", host, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", "10.254.254.2/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", "10.254.254.1"},
	} {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			_ = exec.Command("ip", "netns", "delete", ns).Run()
			return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return "/var/run/netns/" + ns, nil
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
	nss, _ := os.ReadDir("/var/run/netns")
	for _, e := range nss {
		if strings.HasPrefix(e.Name(), "shlbf-") {
			_ = exec.Command("ip", "netns", "delete", e.Name()).Run()
		}
	}
}
