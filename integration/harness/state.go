package harness

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// What a removed pod must not leave in the daemon's directories besides
// processes, mounts and cgroups: files named after it (shimless's sandbox
// records, task and sandbox dirs, runsc state files, CRI's and
// containerd's per-id dirs) and CNI leases held for it.

// stateSkip are directories of content-addressed or image data: no file
// there is named after a pod or container.
var stateSkip = map[string]bool{
	"io.containerd.content.v1.content":       true,
	"io.containerd.snapshotter.v1.overlayfs": true,
	"io.containerd.snapshotter.v1.native":    true,
	"io.containerd.metadata.v1.bolt":         true,
}

// stateFiles lists files and directories under the daemon's root and state
// dirs whose name contains one of ids (the topmost such path only).
func (d *Daemon) stateFiles(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	var out []string
	for _, top := range []string{d.Root, d.State} {
		_ = filepath.WalkDir(top, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if e.IsDir() && stateSkip[e.Name()] {
				return filepath.SkipDir
			}
			if e.IsDir() && p != top && strings.Count(strings.TrimPrefix(p, top), "/") > 6 {
				return filepath.SkipDir
			}
			for _, id := range ids {
				if strings.Contains(e.Name(), id) {
					out = append(out, p)
					if e.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// ipamDir is where host-local keeps the leases of this daemon's network
// (the CNI config's dataDir, one directory per network name).
func (d *Daemon) ipamDir() string {
	return filepath.Join(d.Dir, "ipam", d.Bridge)
}

// cniLeases lists the address leases of this daemon's network as
// "<ip> (<holder>)"; with ids given, only leases held by one of them.
// host-local writes the holder's container id (CRI's sandbox id) as the
// first line of the lease file named after the address.
func (d *Daemon) cniLeases(ids []string, all bool) []string {
	entries, _ := os.ReadDir(d.ipamDir())
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "lock" || strings.HasPrefix(name, "last_reserved_ip") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(d.ipamDir(), name))
		holder := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
		mine := all
		for _, id := range ids {
			if strings.Contains(holder, id) {
				mine = true
				break
			}
		}
		if mine {
			out = append(out, name+" ("+holder+")")
		}
	}
	return out
}

// NetnsDir is where CRI bind-mounts pods' network namespaces
// (netns_mounts_under_state_dir).
func (d *Daemon) NetnsDir() string {
	return filepath.Join(d.State, "io.containerd.grpc.v1.cri", "netns")
}

// shimlessState is the shimless plugin's directory under dir (root or
// state).
func shimlessState(dir string) string {
	return filepath.Join(dir, "io.containerd.shimless.v1.runsc")
}

// Residue lists what a daemon that holds no pod and no container must not
// have left, whoever it belonged to (tracked or not: a pod whose create
// was cut short has an id the test never learnt): CNI leases, network
// namespace files, runsc state files, shimless sandbox records, sandbox
// and task dirs. Call it only when every pod has been removed.
func (d *Daemon) Residue() []string {
	var out []string
	for _, l := range d.cniLeases(nil, true) {
		out = append(out, "CNI lease "+l)
	}
	entries, _ := os.ReadDir(d.NetnsDir())
	for _, e := range entries {
		out = append(out, "netns "+filepath.Join(d.NetnsDir(), e.Name()))
	}
	list := func(what, dir string, keep func(name string) bool) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if keep == nil || !keep(e.Name()) {
				out = append(out, what+" "+filepath.Join(dir, e.Name()))
			}
		}
	}
	// Records: <root>/…/sandboxes/<id>.json.
	list("sandbox record", filepath.Join(shimlessState(d.Root), "sandboxes"), nil)
	// Sandbox dirs; rootfs is the shared pause root of every sandbox.
	list("sandbox dir", filepath.Join(shimlessState(d.State), "sandboxes"), func(n string) bool { return n == "rootfs" })
	// Task dirs per namespace.
	nss, _ := os.ReadDir(filepath.Join(shimlessState(d.State), "tasks"))
	for _, ns := range nss {
		list("task dir", filepath.Join(shimlessState(d.State), "tasks", ns.Name()), nil)
	}
	// runsc's state files (<container>_sandbox:<sandbox>.state) and any
	// private root; null-netns is runsc's own and stays.
	runscRoot := filepath.Join(shimlessState(d.State), "runsc")
	list("runsc state", runscRoot, func(n string) bool { return n == "null-netns" || n == "private" })
	list("runsc private root", filepath.Join(runscRoot, "private"), nil)
	// CRI's per-pod and per-container dirs.
	for _, dir := range []string{d.Root, d.State} {
		list("CRI sandbox dir", filepath.Join(dir, "io.containerd.grpc.v1.cri", "sandboxes"), nil)
		list("CRI container dir", filepath.Join(dir, "io.containerd.grpc.v1.cri", "containers"), nil)
	}
	// Bundles of stock shims (runc, and the task runtime's k8s.io tasks).
	list("shim bundle", filepath.Join(d.State, "io.containerd.runtime.v2.task", "k8s.io"), nil)
	return out
}
