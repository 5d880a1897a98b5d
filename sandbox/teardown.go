package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"
)

// processTree returns the host pids that belong to a sandbox: the sandbox
// process itself, every process in its cgroup, and every runsc process
// (gofer, sandbox, CLI) whose command line names the sandbox's bundle or id
// under our runsc root.
func (c *Controller) processTree(rec record, bundle string) []int {
	seen := map[int]bool{}
	if rec.Pid > 0 && c.isRunscProcess(int(rec.Pid)) {
		seen[int(rec.Pid)] = true
	}
	for _, dir := range append(cgroupDirs(rec.CgroupsPath), cgroupDirs(rec.SandboxCgroup)...) {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && !isZombie(pid) {
				seen[pid] = true
			}
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := string(raw)
		if !strings.Contains(cmdline, c.opts.Runsc.Root) {
			continue
		}
		if isZombie(pid) {
			continue
		}
		if strings.Contains(cmdline, bundle) || strings.Contains(cmdline, "\x00"+rec.ID+"\x00") || strings.HasSuffix(cmdline, "\x00"+rec.ID) {
			seen[pid] = true
		}
	}
	delete(seen, os.Getpid())
	out := make([]int, 0, len(seen))
	for pid := range seen {
		out = append(out, pid)
	}
	return out
}

// isRunscProcess guards against pid reuse: pid is a live process of our
// runsc root.
func (c *Controller) isRunscProcess(pid int) bool {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && !isZombie(pid) && strings.Contains(string(raw), c.opts.Runsc.Root)
}

// killTree SIGKILLs a sandbox's whole process tree and waits (bounded) for
// the processes to be gone.
func (c *Controller) killTree(ctx context.Context, rec record, bundle string) {
	pids := c.processTree(rec, bundle)
	log.G(ctx).WithField("sandbox", rec.ID).WithField("pids", pids).Warn("killing sandbox process tree")
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		alive := false
		for _, pid := range pids {
			if unix.Kill(pid, 0) == nil && !isZombie(pid) {
				alive = true
			}
		}
		if !alive {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// cgroupDirs returns the host directories of a cgroups path in every
// mounted hierarchy (v1 controllers and the unified one).
func cgroupDirs(cgroupsPath string) []string {
	if cgroupsPath == "" {
		return nil
	}
	rel := cgroupRelPath(cgroupsPath)
	if cgroups.Mode() == cgroups.Unified {
		return []string{filepath.Join("/sys/fs/cgroup", rel)}
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || e.Type()&os.ModeSymlink == 0 {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name(), rel))
		}
	}
	return out
}

// cgroupRelPath turns a cgroupfs path or a systemd "slice:prefix:name"
// into a path relative to a hierarchy's root.
func cgroupRelPath(p string) string {
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		if strings.HasSuffix(p, ".slice") && !strings.Contains(p, "/") {
			return filepath.Join("/", expandSlice(p))
		}
		return p
	}
	return filepath.Join("/", expandSlice(parts[0]), parts[1]+"-"+parts[2]+".scope")
}

// expandSlice expands a systemd slice name to its path:
// "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice".
func expandSlice(slice string) string {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "" || name == "-" {
		return ""
	}
	var path, prefix string
	for _, comp := range strings.Split(name, "-") {
		if prefix == "" {
			prefix = comp
		} else {
			prefix += "-" + comp
		}
		path = filepath.Join(path, prefix+".slice")
	}
	return path
}

// RemoveCgroups removes a container's leftover cgroup directories (cgroupfs
// path or systemd slice:prefix:name) in every hierarchy; only empty ones
// can go. For the task runtime, whose containers' cgroups runsc cannot
// remove once their sandbox is gone.
func RemoveCgroups(ctx context.Context, id, cgroupsPath string) {
	removeCgroups(ctx, id, cgroupsPath)
}

// removeCgroups removes the sandbox's cgroup directories that runsc left
// behind (it can, after a failed create). Only empty ones can be removed;
// nested children first.
func removeCgroups(ctx context.Context, id, cgroupsPath string) {
	for _, dir := range cgroupDirs(cgroupsPath) {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := unix.Rmdir(dirs[i]); err != nil && err != unix.ENOENT {
				log.G(ctx).WithField("sandbox", id).WithError(err).Warnf("cannot remove cgroup %s", dirs[i])
			}
		}
	}
}
