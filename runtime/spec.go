package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/continuity/fs"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shimless/shimless/sandbox"
)

// checkSpec applies the sandbox controller's rules to a container spec
// before runsc sees it. CRI has already filtered the pod's and the
// container's annotations through the handler's pod_annotations and
// container_annotations; what passed still meets shimless's own
// dev.gvisor.* policy here (no internal.*, bundles and flag overrides only
// when the plugin config allows them). Resources and sysctls get the same
// bounds as a pod's: CRI turns negative CRI values into huge unsigned ones.
func checkSpec(spec *specs.Spec, policy sandbox.AnnotationPolicy) error {
	if err := policy.CheckAll(spec.Annotations); err != nil {
		return err
	}
	return sandbox.ValidateSpecResources(spec)
}

// mountOptionRRO is the recursive read-only mount option (runc's "rro";
// CRI uses it when the runtime advertises it).
const mountOptionRRO = "rro"

// recursiveReadOnly turns "rro" into runsc's "ro": in gVisor a read-only
// mount is read-only with everything mounted below it (the Sentry's VFS
// applies the flag to the whole bind), which is what rro asks for. runsc
// itself does not know the option.
func recursiveReadOnly(spec *specs.Spec) {
	for i := range spec.Mounts {
		opts := spec.Mounts[i].Options
		if !slices.Contains(opts, mountOptionRRO) {
			continue
		}
		out := opts[:0:0]
		placed := false
		for _, o := range opts {
			switch o {
			case mountOptionRRO, "ro":
				if !placed {
					out = append(out, "ro")
				}
				placed = true
			case "rw":
				// read-only wins
			default:
				out = append(out, o)
			}
		}
		spec.Mounts[i].Options = out
	}
}

// withRRO adds "rro" to runsc's advertised mount options: CRI then offers
// recursive read-only mounts for the handler (see recursiveReadOnly).
func withRRO(mountOptions []string) []string {
	if slices.Contains(mountOptions, mountOptionRRO) {
		return mountOptions
	}
	return append(slices.Clone(mountOptions), mountOptionRRO)
}

// rootfsPath cleans a readonly or masked path; ok is false for the root
// itself and for /proc and /sys, gVisor's own synthetic filesystems, which
// do not expose the host's files runc's defaults hide.
func rootfsPath(p string) (clean string, ok bool) {
	clean = filepath.Clean("/" + p)
	for _, synthetic := range []string{"/proc", "/sys"} {
		if clean == synthetic || strings.HasPrefix(clean, synthetic+"/") {
			return "", false
		}
	}
	return clean, clean != "/"
}

// readonlyPaths applies linux.readonlyPaths, which runsc ignores: each path
// in the container's rootfs becomes a read-only bind of itself (a path that
// is a mount's destination gets "ro" on that mount). Paths are resolved
// inside the rootfs (symlinks cannot lead out of it); missing ones are
// skipped, as runc does. /proc and /sys are gVisor's own synthetic
// filesystems, which do not expose the host's files runc's defaults hide.
func readonlyPaths(spec *specs.Spec, rootfs string) error {
	if spec.Linux == nil || rootfs == "" {
		return nil
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		clean, ok := rootfsPath(p)
		if !ok {
			continue
		}
		mounted := false
		for i := range spec.Mounts {
			if filepath.Clean(spec.Mounts[i].Destination) == clean {
				if !slices.Contains(spec.Mounts[i].Options, "ro") {
					spec.Mounts[i].Options = append(slices.DeleteFunc(slices.Clone(spec.Mounts[i].Options), func(o string) bool { return o == "rw" }), "ro")
				}
				mounted = true
			}
		}
		if mounted {
			continue
		}
		src, err := fs.RootPath(rootfs, clean)
		if err != nil {
			return fmt.Errorf("readonly path %q: %w", p, err)
		}
		if _, err := os.Lstat(src); err != nil {
			continue // not in the image
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: clean, Type: "bind", Source: src, Options: []string{"rbind", "ro"}})
	}
	return nil
}

// maskedPaths applies linux.maskedPaths, which runsc ignores, as runc
// does: a directory gets an empty read-only tmpfs over it, a file an empty
// unreadable, unexecutable file (runc binds /dev/null; a host device
// cannot be bound into gVisor). Paths are resolved inside the rootfs;
// missing ones, /proc and /sys (gVisor's own synthetic filesystems, without
// the host files runc's defaults hide) are skipped.
func maskedPaths(spec *specs.Spec, rootfs, dir string) error {
	if spec.Linux == nil || rootfs == "" {
		return nil
	}
	empty := ""
	for _, p := range spec.Linux.MaskedPaths {
		clean, ok := rootfsPath(p)
		if !ok {
			continue
		}
		src, err := fs.RootPath(rootfs, clean)
		if err != nil {
			return fmt.Errorf("masked path %q: %w", p, err)
		}
		fi, err := os.Stat(src)
		if err != nil {
			continue // not in the image
		}
		if fi.IsDir() {
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: clean, Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "nosuid", "nodev", "noexec", "size=0"}})
			continue
		}
		if empty == "" {
			empty = filepath.Join(dir, "masked")
			if err := os.WriteFile(empty, nil, 0); err != nil {
				return fmt.Errorf("masked path %q: %w", p, err)
			}
			if err := os.Chmod(empty, 0); err != nil {
				return fmt.Errorf("masked path %q: %w", p, err)
			}
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: clean, Type: "bind", Source: empty, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}
	return nil
}

// updateBundleResources writes new resources into the spec of a bundle
// runsc has not created yet: each part res gives replaces the spec's, as
// an update of a created container would.
func updateBundleResources(dir string, res *specs.LinuxResources) error {
	spec, err := sandbox.ReadSpec(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	cur := spec.Linux.Resources
	if res.CPU != nil {
		cur.CPU = res.CPU
	}
	if res.Memory != nil {
		cur.Memory = res.Memory
	}
	if res.Pids != nil {
		cur.Pids = res.Pids
	}
	if res.BlockIO != nil {
		cur.BlockIO = res.BlockIO
	}
	if res.HugepageLimits != nil {
		cur.HugepageLimits = res.HugepageLimits
	}
	if res.Unified != nil {
		cur.Unified = res.Unified
	}
	return sandbox.WriteJSONAtomic(filepath.Join(dir, "config.json"), spec)
}
