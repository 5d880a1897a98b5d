// Package harness boots the built shimless containerd as a child process on
// private --root/--state/--address directories, gives tests a CRI client,
// and tears everything down afterwards, checking that nothing leaked.
// It builds nothing: `make binaries images` must have run (the integration
// runner does it). Tests using it need root.
package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options adjust the generated config.
type Options struct {
	// RunscPath overrides the runsc binary the plugin uses ("" = bin/runsc).
	RunscPath string
	// ShimlessConfig is extra TOML lines for the
	// [plugins.'io.containerd.shimless.v1.runsc'] table.
	ShimlessConfig string
	// SkipImages leaves the test images out.
	SkipImages bool
	// RunscPodAnnotations is the runsc handler's pod_annotations (CRI's
	// allowlist); nil leaves it unset, as in a default config.
	RunscPodAnnotations []string
	// BinDir runs containerd and ctr from this directory instead of the
	// repository's bin/ (e.g. an unpacked release bundle).
	BinDir string
	// ConfigFile is an operator's config.toml to run instead of the
	// generated one, changed only where a test daemon must be private
	// (see AdaptConfig).
	ConfigFile string
	// ExtraConfig is extra top-level TOML for the generated config.toml
	// (not with ConfigFile), e.g.
	// "[metrics]\n  address = \"127.0.0.1:1338\"".
	ExtraConfig string
	// Env is extra environment of the containerd process (e.g. OTEL_*).
	Env []string
	// Tmpfs mounts a tmpfs of the given size (mount's size= option, e.g.
	// "16m") on each directory, given relative to the daemon's Dir (e.g.
	// "state"), before containerd starts: a disk that can fill up. They
	// are not leaks, and go at cleanup.
	Tmpfs map[string]string
	// Containerd runs this containerd binary instead of BinDir's (e.g. the
	// stock containerd of `make stock`, with ConfigFile a config without
	// the shimless plugin table).
	Containerd string
}

// Daemon is one running containerd.
type Daemon struct {
	t       testing.TB
	opts    Options
	Dir     string // everything of this daemon lives under Dir
	BinDir  string
	Root    string
	State   string
	Address string
	Config  string
	LogPath string
	LogDir  string // pod log directories go here
	// Bridge and Subnet are this daemon's CNI network.
	Bridge, Subnet string

	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	conn    *grpc.ClientConn
	tracked map[string]bool // pod and container ids to leak-check
	tmpfs   map[string]bool // mount points of Options.Tmpfs
}

// RequireRoot skips the test when not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration test needs root (run `make test` as root)")
	}
}

// RepoRoot finds the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && filepath.Base(filepath.Dir(dir)) != "build" {
			if _, err := os.Stat(filepath.Join(dir, "cmd", "containerd")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root not found")
		}
		dir = parent
	}
}

// Start boots containerd and waits until CRI answers with runtime and
// network ready. Cleanup (registered on t) stops it and checks for leaks.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	RequireRoot(t)
	repo := RepoRoot(t)
	binDir := filepath.Join(repo, "bin")
	need := []string{"containerd", "ctr", "containerd-shim-runc-v2", "runsc", "runc", "shimless-pause"}
	if opts.BinDir != "" {
		binDir = opts.BinDir
		need = []string{"containerd", "ctr", "runsc", "shimless-pause"}
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			t.Fatalf("%s: %v (run `make` first)", filepath.Join(binDir, b), err)
		}
	}
	// Short paths: unix socket addresses are limited to 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "shl-")
	if err != nil {
		t.Fatal(err)
	}
	// Traversable like /run/containerd, so user-namespaced sandboxes (whose
	// root maps to an unprivileged host uid) can reach their rootfs.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	n := rand.IntN(200) + 20
	d := &Daemon{
		t:       t,
		opts:    opts,
		Dir:     dir,
		BinDir:  binDir,
		Root:    filepath.Join(dir, "root"),
		State:   filepath.Join(dir, "state"),
		Address: filepath.Join(dir, "c.sock"),
		Config:  filepath.Join(dir, "config.toml"), // written by WriteConfig
		LogPath: filepath.Join(dir, "containerd.log"),
		LogDir:  filepath.Join(dir, "pods"),
		Bridge:  fmt.Sprintf("shl%s", filepath.Base(dir)[4:]),
		Subnet:  fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(50), n),
		tracked: map[string]bool{},
		tmpfs:   map[string]bool{},
	}
	if len(d.Bridge) > 15 {
		d.Bridge = d.Bridge[:15]
	}
	t.Cleanup(d.cleanup)
	runscPath := opts.RunscPath
	if runscPath == "" {
		runscPath = filepath.Join(binDir, "runsc")
	}
	if err := WriteConfig(Config{
		Dir: d.Dir, Root: d.Root, State: d.State, Address: d.Address,
		RunscPath: runscPath, RuncPath: filepath.Join(binDir, "runc"), ShimlessConfig: opts.ShimlessConfig,
		RunscPodAnnotations: tomlStrings(opts.RunscPodAnnotations),
		ExtraConfig:         opts.ExtraConfig,
		Bridge:              d.Bridge, Subnet: d.Subnet,
	}); err != nil {
		t.Fatal(err)
	}
	if opts.ConfigFile != "" {
		if err := AdaptConfig(opts.ConfigFile, d.Config, Config{
			Dir: d.Dir, Root: d.Root, State: d.State, Address: d.Address,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(d.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for rel, size := range opts.Tmpfs {
		mp := filepath.Join(d.Dir, rel)
		if err := os.MkdirAll(mp, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", mp, "tmpfs", 0, "mode=0711,size="+size); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", mp, err)
		}
		d.tmpfs[mp] = true
	}
	d.start()
	if !opts.SkipImages {
		d.ImportImages(filepath.Join(repo, "_output", "images.tar"))
	}
	return d
}

// start launches containerd and waits for CRI readiness.
func (d *Daemon) start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	bin := d.opts.Containerd
	if bin == "" {
		bin = filepath.Join(d.BinDir, "containerd")
	}
	cmd := exec.Command(bin, "--config", d.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "PATH="+d.BinDir+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, d.opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()

	// gRPC's default reconnect backoff starts at 1s: a client that tried
	// before the socket existed would see containerd a second late, which
	// the restart figures must not count.
	conn, err := grpc.NewClient("unix://"+d.Address, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.2, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.Address)
		}))
	if err != nil {
		d.t.Fatal(err)
	}
	d.conn = conn
	d.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
	d.Images = runtimeapi.NewImageServiceClient(conn)

	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			d.t.Fatalf("containerd exited during startup; log:\n%s", d.LogTail(60))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := d.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
		cancel()
		if err == nil {
			ready := 0
			for _, c := range resp.GetStatus().GetConditions() {
				if c.Status && (c.Type == runtimeapi.RuntimeReady || c.Type == runtimeapi.NetworkReady) {
					ready++
				}
			}
			if ready == 2 {
				return
			}
			err = fmt.Errorf("not ready: %v", resp.GetStatus().GetConditions())
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("CRI not ready within 60s: %v; log:\n%s", lastErr, d.LogTail(60))
}

// Ctr runs bin/ctr against this daemon in the k8s.io namespace.
func (d *Daemon) Ctr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"--address", d.Address, "--namespace", "k8s.io"}, args...)
	out, err := exec.CommandContext(ctx, filepath.Join(d.BinDir, "ctr"), full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ImportImages imports the offline test images and waits until CRI sees
// them.
func (d *Daemon) ImportImages(archive string) {
	d.t.Helper()
	if _, err := os.Stat(archive); err != nil {
		d.t.Fatalf("%v (run `make images` first)", err)
	}
	if out, err := d.Ctr("images", "import", archive); err != nil {
		d.t.Fatalf("%v\n%s", err, out)
	}
	for _, ref := range []string{"shimless.test/busybox:latest", "shimless.test/pause:latest"} {
		d.Eventually(10*time.Second, func() error {
			resp, err := d.Images.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			if err != nil {
				return err
			}
			if resp.Image == nil {
				return fmt.Errorf("CRI does not see image %s yet", ref)
			}
			return nil
		})
	}
}

// Eventually retries f every 100ms until it returns nil or timeout passes.
func (d *Daemon) Eventually(timeout time.Duration, f func() error) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LogTail returns the last n lines of containerd's log.
func (d *Daemon) LogTail(n int) string {
	b, _ := os.ReadFile(d.LogPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log returns containerd's whole log.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// Kill9 kills containerd with SIGKILL (pods are left running).
func (d *Daemon) Kill9() {
	d.t.Helper()
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	d.conn.Close()
}

// Restart starts containerd again on the same directories.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.start()
}

// stop ends containerd gracefully (SIGTERM, then SIGKILL after 30s).
func (d *Daemon) stop() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		d.t.Errorf("containerd did not exit within 30s of SIGTERM; killing it")
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	if d.conn != nil {
		d.conn.Close()
	}
}

// Pid is containerd's pid.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.Process.Pid
}
