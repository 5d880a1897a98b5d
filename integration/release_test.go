//go:build integration

package integration

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shimless/shimless/integration/harness"
)

// TestReleaseBundle: the bundle `make release` writes (hack/release.sh,
// here packing the already-built bin/) has containerd's release layout,
// root-owned entries and checksums that verify; containerd started from the
// unpacked binaries with the bundle's own config.toml (made private by the
// harness: dirs, socket, CNI) runs a runsc pod, and nothing is left after.
func TestReleaseBundle(t *testing.T) {
	harness.RequireRoot(t)
	repo := harness.RepoRoot(t)
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(repo, "hack", "release.sh"), "test", goruntime.GOARCH)
	cmd.Env = append(os.Environ(), "OUT_DIR="+out, "BIN_DIR="+filepath.Join(repo, "bin"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/release.sh: %v\n%s", err, b)
	}
	name := "shimless-test-linux-" + goruntime.GOARCH + ".tar.gz"
	tarball := filepath.Join(out, name)
	check := exec.Command("sha256sum", "-c", name+".sha256sum")
	check.Dir = out
	if b, err := check.CombinedOutput(); err != nil {
		t.Fatalf("%s.sha256sum does not verify: %v\n%s", name, err, b)
	}

	listing, err := exec.Command("tar", "-tvzf", tarball).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -t: %v\n%s", err, listing)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "0/0" {
			t.Errorf("entry not owned by 0/0: %q", line)
			continue
		}
		if line[0] == '-' {
			files = append(files, f[len(f)-1])
		}
	}
	want := []string{
		"etc/containerd/config.toml",
		"etc/systemd/system/containerd.service",
		"examples/runtimeclass.yaml",
		"sha256sum",
		"usr/local/bin/containerd",
		"usr/local/bin/containerd-shim-runc-v2",
		"usr/local/bin/ctr",
		"usr/local/bin/runsc",
		"usr/local/bin/shimless-pause",
	}
	slices.Sort(files)
	if !slices.Equal(files, want) {
		t.Errorf("bundle files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}

	root := t.TempDir()
	if b, err := exec.Command("tar", "-C", root, "-xzf", tarball).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, b)
	}
	// The bundle's sha256sum covers every other file in it, and verifies.
	sums, err := os.ReadFile(filepath.Join(root, "sha256sum"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		if f := strings.Fields(line); len(f) == 2 && len(f[0]) == 64 {
			listed = append(listed, f[1])
		} else {
			t.Errorf("sha256sum line %q is not sha256sum output", line)
		}
	}
	var onDisk []string
	_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && p != filepath.Join(root, "sha256sum") {
			rel, _ := filepath.Rel(root, p)
			onDisk = append(onDisk, rel)
		}
		return nil
	})
	slices.Sort(listed)
	slices.Sort(onDisk)
	if !slices.Equal(listed, onDisk) {
		t.Errorf("sha256sum lists %v, bundle holds %v", listed, onDisk)
	}
	verify := exec.Command("sha256sum", "--strict", "-c", "sha256sum")
	verify.Dir = root
	if b, err := verify.CombinedOutput(); err != nil {
		t.Fatalf("bundle sha256sum does not verify: %v\n%s", err, b)
	}

	bin := filepath.Join(root, "usr", "local", "bin")
	d := harness.Start(t, harness.Options{
		BinDir:     bin,
		ConfigFile: filepath.Join(root, "etc", "containerd", "config.toml"),
	})
	if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(d.Pid()), "exe")); err != nil || exe != filepath.Join(bin, "containerd") {
		t.Errorf("containerd runs %q (%v), want the bundle's", exe, err)
	}
	if v, err := d.Ctr("version"); err != nil || !strings.Contains(v, "shimless") {
		t.Errorf("ctr version = %q, %v; want the shimless server", v, err)
	}
	pod := d.PodConfig("release")
	podID := d.RunPod(pod, "runsc")
	st := podState(t, d, podID)
	// The plugin found runsc next to the unpacked containerd (runsc_path
	// "runsc" in the bundle's config).
	if !strings.HasPrefix(st.Info["runscRoot"], d.State) {
		t.Errorf("runsc root %q not under the daemon's state %s", st.Info["runscRoot"], d.State)
	}
	c := harness.ContainerConfig("hello", "sh", "-c", "echo hello from $(uname -s) release bundle")
	id := d.StartContainer(podID, pod, c)
	if code := d.WaitExited(id, 30*time.Second).ExitCode; code != 0 {
		t.Errorf("exit code %d", code)
	}
	lines, err := d.ContainerLog(pod, c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(lines, "stdout hello from Linux release bundle") {
		t.Errorf("log %q lacks the container's output", lines)
	}
	stopAndRemove(t, d, podID)
	if leaks := d.Leaks(); len(leaks) > 0 {
		t.Errorf("after pod removal, still on the host:\n%s", strings.Join(leaks, "\n"))
	}
}
