//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shimless/shimless/integration/harness"
)

// nerdctl runs bin/nerdctl against d in its own namespace and data root.
type nerdctl struct {
	t        *testing.T
	d        *harness.Daemon
	bin, ns  string
	dataRoot string
}

func (n nerdctl) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"--address", n.d.Address, "--namespace", n.ns, "--data-root", n.dataRoot,
		"--cgroup-manager", "cgroupfs", "--snapshotter", "overlayfs"}, args...)
	cmd := exec.CommandContext(ctx, n.bin, full...)
	cmd.Env = append(os.Environ(), "PATH="+n.d.BinDir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("nerdctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// TestNerdctlRunsc: `nerdctl run --runtime io.containerd.runsc.v1` with
// nerdctl's default log driver (nerdctl re-executed as a binary://
// logger): run -d, logs, exec, rm -f, and nothing left behind.
func TestNerdctlRunsc(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	bin := filepath.Join(d.BinDir, "nerdctl")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v (run `make bin/nerdctl`)", err)
	}
	n := nerdctl{t: t, d: d, bin: bin, ns: "nerdctl-test", dataRoot: filepath.Join(d.Dir, "nerdctl")}
	repo := harness.RepoRoot(t)
	ctr := exec.Command(filepath.Join(d.BinDir, "ctr"), "--address", d.Address, "--namespace", n.ns,
		"images", "import", filepath.Join(repo, "_output", "images.tar"))
	if out, err := ctr.CombinedOutput(); err != nil {
		t.Fatalf("import images into %s: %v: %s", n.ns, err, out)
	}

	out, err := n.run("run", "-d", "--runtime", "io.containerd.runsc.v1", "--net", "none", "--name", "web",
		harness.Busybox, "sh", "-c", "for i in 1 2 3; do echo line$i; done; echo oops >&2; exec sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	t.Logf("container %s", id)
	d.Track(id)

	var logs string
	d.Eventually(30*time.Second, func() error {
		out, err := n.run("logs", "web")
		logs = out
		if err != nil {
			return err
		}
		for _, want := range []string{"line1", "line2", "line3", "oops"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("nerdctl logs shows %q, want %s in it", out, want)
			}
		}
		return nil
	})

	t.Logf("nerdctl logs: %q", logs)

	out, err = n.run("exec", "web", "sh", "-c", "echo exec-ok; cat /proc/self/cgroup >/dev/null; uname -r")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nerdctl exec: %q", out)
	if !strings.Contains(out, "exec-ok") {
		t.Errorf("nerdctl exec output %q, want exec-ok", out)
	}

	out, err = n.run("ps", "-a")
	if err != nil || !strings.Contains(out, "web") {
		t.Errorf("nerdctl ps -a: %v %q", err, out)
	}

	if out, err := n.run("rm", "-f", "web"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out, err = n.run("ps", "-a", "-q")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("nerdctl ps -a after rm -f: %q", out)
	}
	tasks, err := exec.Command(filepath.Join(d.BinDir, "ctr"), "--address", d.Address, "--namespace", n.ns, "tasks", "ls", "-q").Output()
	if err != nil || strings.TrimSpace(string(tasks)) != "" {
		t.Errorf("ctr tasks ls after rm -f: %v %q", err, tasks)
	}
	d.Eventually(20*time.Second, func() error {
		if leaks := d.Leaks(); len(leaks) > 0 {
			return fmt.Errorf("leaks after rm -f: %v", leaks)
		}
		return nil
	})
}
