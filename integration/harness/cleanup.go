package harness

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Track adds a pod or container id to the leak check.
func (d *Daemon) Track(id string) {
	d.mu.Lock()
	d.tracked[id] = true
	d.mu.Unlock()
}

func (d *Daemon) trackedIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id := range d.tracked {
		ids = append(ids, id)
	}
	return ids
}

func (d *Daemon) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running0()
}

// running0 is running with d.mu held.
func (d *Daemon) running0() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// RemoveAllPods stops and removes every pod through CRI.
func (d *Daemon) RemoveAllPods() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	var errs []string
	for _, p := range resp.Items {
		if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, fmt.Sprintf("stop pod %s: %v", p.Id, err))
		}
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, fmt.Sprintf("remove pod %s: %v", p.Id, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// cleanup removes every pod, stops containerd, reports anything left
// behind as a test error, then removes the leftovers by force so that the
// next test starts clean.
func (d *Daemon) cleanup() {
	t := d.t
	if d.running() {
		if err := d.RemoveAllPods(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	d.stop()
	leaks := d.Leaks()
	for _, l := range leaks {
		t.Errorf("leaked: %s", l)
	}
	if t.Failed() {
		t.Logf("containerd log (%s), last lines:\n%s", d.LogPath, d.LogTail(150))
	}
	d.forceClean()
}

// Leaks lists what of this daemon's pods is still on the host: processes,
// mounts, cgroups, and files named after a tracked pod or container in
// the daemon's root and state dirs (records, task dirs, runsc state), and
// CNI leases held by one.
func (d *Daemon) Leaks() []string {
	var leaks []string
	ids := d.trackedIDs()
	for _, f := range d.stateFiles(ids) {
		leaks = append(leaks, "state "+f)
	}
	for _, l := range d.cniLeases(ids, false) {
		leaks = append(leaks, "CNI lease "+l)
	}
	for _, p := range d.processes() {
		leaks = append(leaks, fmt.Sprintf("process %d (%s)", p.pid, p.cmdline))
	}
	for _, m := range d.mounts() {
		leaks = append(leaks, "mount "+m)
	}
	for _, c := range d.cgroups() {
		leaks = append(leaks, "cgroup "+c)
	}
	return leaks
}

type proc struct {
	pid     int
	cmdline string
}

// processes finds processes that belong to this daemon: their command line
// names its directory, or their cgroup names a tracked id.
func (d *Daemon) processes() []proc {
	ids := d.trackedIDs()
	self := -1
	d.mu.Lock()
	if d.cmd != nil && d.cmd.Process != nil && d.running0() {
		self = d.cmd.Process.Pid
	}
	d.mu.Unlock()
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || pid == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		mine := strings.Contains(cmdline, d.Dir)
		if !mine && len(ids) > 0 {
			cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
			for _, id := range ids {
				if strings.Contains(string(cg), id) {
					mine = true
					break
				}
			}
		}
		if mine {
			out = append(out, proc{pid, cmdline})
		}
	}
	return out
}

// mounts lists mount points under the daemon's directory, deepest first.
func (d *Daemon) mounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	for s := bufio.NewScanner(f); s.Scan(); {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if d.tmpfs[mp] {
			continue // the test's own (Options.Tmpfs)
		}
		if mp == d.Dir || strings.HasPrefix(mp, d.Dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// cgroups lists cgroup directories named after a tracked id, deepest first.
func (d *Daemon) cgroups() []string {
	ids := d.trackedIDs()
	if len(ids) == 0 {
		return nil
	}
	var out []string
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if strings.Count(p, "/") > 8 {
			return filepath.SkipDir
		}
		for _, id := range ids {
			if strings.Contains(e.Name(), id) {
				out = append(out, p)
				break
			}
		}
		return nil
	})
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// forceClean removes whatever is left: processes, mounts, cgroups, the
// bridge and the directory.
func (d *Daemon) forceClean() {
	for _, p := range d.processes() {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range d.mounts() {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	for mp := range d.tmpfs {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
	for _, c := range d.cgroups() {
		_ = os.Remove(c)
	}
	_ = exec.Command("ip", "link", "del", d.Bridge).Run()
	if err := os.RemoveAll(d.Dir); err != nil {
		d.t.Logf("cleanup: remove %s: %v", d.Dir, err)
	}
}
