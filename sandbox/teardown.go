package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/telemetry"
)

// processTree returns the host pids of a sandbox: its sandbox process and
// its containers' gofers, exactly as runsc's state files record them for
// this sandbox id, plus the direct children of those (the platform's stub
// processes). Each is checked to be a live process of our runsc root, so a
// reused pid is never taken. Nothing else is matched: no cgroup (a pod's
// cgroup parent may hold other pods), no command-line substring, and no
// scan of /proc.
func (c *Controller) processTree(rec record) []int {
	return SandboxProcessTree(c.client(rec), rec.ID, rec.Pid)
}

// SandboxProcessTree is processTree for any sandbox under client's root: a
// controller's sandbox, or a root container the task runtime runs itself.
// pid is the sandbox process as its owner recorded it (0 if unknown).
func SandboxProcessTree(client runsc.Runner, sandboxID string, pid uint32) []int {
	seen := map[int]bool{}
	var out []int
	add := func(p int) {
		if p > 0 && p != os.Getpid() && !seen[p] && isRunscProcess(client.RootDir(), p) {
			seen[p] = true
			out = append(out, p)
		}
	}
	add(int(pid))
	for _, p := range client.SandboxProcesses(sandboxID) {
		add(p)
	}
	for _, p := range slices.Clone(out) {
		for _, child := range children(p) {
			add(child)
		}
	}
	return out
}

// children lists a process's direct children (every thread's).
func children(pid int) []int {
	tasks, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	var out []int
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", t.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// isRunscProcess guards against pid reuse: pid is a live process whose
// command line names our runsc root as an argument (runsc passes --root to
// its sandbox and gofer processes; the platform's stubs are forks of the
// sandbox process).
func isRunscProcess(root string, pid int) bool {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || isZombie(pid) {
		return false
	}
	for _, arg := range strings.Split(string(raw), "\x00") {
		if arg == "--root="+root || arg == root {
			return true
		}
	}
	return false
}

// IsRunscProcess reports whether pid is a live process of the runsc root
// (a sandbox process as its owner recorded it): no runsc process is asked.
func IsRunscProcess(root string, pid uint32) bool {
	return pid > 0 && isRunscProcess(root, int(pid))
}

// killTree SIGKILLs a sandbox's whole process tree and waits (bounded) for
// the processes to be gone.
func (c *Controller) killTree(ctx context.Context, rec record) {
	killProcesses(ctx, rec.ID, c.processTree(rec))
}

// KillSandboxTree SIGKILLs the process tree of a sandbox under client's
// root (see SandboxProcessTree) and waits, bounded, for it to be gone.
func KillSandboxTree(ctx context.Context, client runsc.Runner, sandboxID string, pid uint32) {
	killProcesses(ctx, sandboxID, SandboxProcessTree(client, sandboxID, pid))
}

func killProcesses(ctx context.Context, sandboxID string, pids []int) {
	log.G(ctx).WithField("sandbox", sandboxID).WithField("pids", pids).Warn("killing sandbox process tree")
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
		time.Sleep(20 * time.Millisecond)
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

// killSandbox tears down a running sandbox that does not answer: its whole
// process tree is SIGKILLed, it reads as killed (137), and KillSandbox
// returns once its exit has been recorded (bounded). The task runtime uses
// it when a container of the sandbox cannot be killed through runsc: the
// sentry holds every container, so the sandbox must go.
func (c *Controller) killSandbox(ctx context.Context, id string) error {
	s, rec, err := c.running(id)
	if err != nil {
		if errdefs.IsFailedPrecondition(err) {
			return nil // already exited
		}
		return err
	}
	telemetry.ForcedTeardown(telemetry.ForcedKillSandbox)
	return c.forceKill(ctx, s, rec)
}

// forceKill marks a sandbox forced (its containers read 137), kills its
// process tree and waits, bounded, for its exit to be recorded.
func (c *Controller) forceKill(ctx context.Context, s *Sandbox, rec record) error {
	s.mu.Lock()
	s.forced = true
	s.mu.Unlock()
	c.killTree(ctx, rec)
	select {
	case <-s.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("sandbox %s did not exit after its process tree was killed: %w", rec.ID, errdefs.ErrUnavailable)
	}
}
