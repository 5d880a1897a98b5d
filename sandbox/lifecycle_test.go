package sandbox

import (
	"context"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/sandbox/runsc/runscfake"
)

type topics struct {
	mu sync.Mutex
	l  []string
}

func (p *topics) Publish(_ context.Context, topic string, _ events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.l = append(p.l, topic)
	return nil
}

// fakeEnv is a controller over temp dirs driving a fake runsc.
type fakeEnv struct {
	t    *testing.T
	dir  string
	fake *runscfake.Fake
	pub  *topics
	c    *Controller
	ctx  context.Context
}

func newFakeEnv(t *testing.T) *fakeEnv {
	_ = log.SetLevel("error") // the lifecycle logs at info; keep test output readable
	e := &fakeEnv{t: t, dir: t.TempDir(), fake: runscfake.New(), pub: &topics{}, ctx: namespaces.WithNamespace(context.Background(), "k8s.io")}
	e.restart()
	t.Cleanup(func() {
		e.fake.Close()
		e.c.Close()
	})
	return e
}

// restart builds a new controller from what is on disk.
func (e *fakeEnv) restart() {
	hosts := filepath.Join(e.dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if e.c != nil {
		e.c.Close()
	}
	c, err := New(e.ctx, Options{
		Runsc:     e.fake.Runner(filepath.Join(e.dir, "runsc")),
		PausePath: hosts, StateDir: filepath.Join(e.dir, "state"), RootDir: filepath.Join(e.dir, "root"),
		CRIRootDir: filepath.Join(e.dir, "cri"), HostsFile: hosts, ResolvConf: hosts,
		StopTimeout: 500 * time.Millisecond, Publisher: e.pub, CgroupRoot: filepath.Join(e.dir, "cgroup"),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.c = c
}

func (e *fakeEnv) pod(id string) {
	e.t.Helper()
	cfg, err := typeurl.MarshalAny(&runtimeapi.PodSandboxConfig{Hostname: id, Linux: &runtimeapi.LinuxPodSandboxConfig{}})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.c.Create(e.ctx, sandbox.Sandbox{ID: id}, sandbox.WithOptions(cfg), sandbox.WithNetNSPath("/var/run/netns/x")); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.c.Start(e.ctx, id); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fakeEnv) status(id string) string {
	e.t.Helper()
	st, err := e.c.Status(e.ctx, id, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.State
}

func (e *fakeEnv) wait(id string) sandbox.ExitStatus {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	st, err := e.c.Wait(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func alive(pid int) bool {
	return pid > 0 && unix.Kill(pid, 0) == nil && !isZombie(pid)
}

// A sandbox that does not answer runsc kill is stopped within the stop
// timeout plus the forced teardown, and reads as killed (137).
func TestStopHungSandboxIsBounded(t *testing.T) {
	e := newFakeEnv(t)
	e.pod("pod")
	pid := e.fake.SandboxPid("pod")
	e.fake.SetHook("Kill", runscfake.Hang)
	begin := time.Now()
	if err := e.c.Stop(e.ctx, "pod"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Fatalf("stop took %s", took)
	}
	if st := e.wait("pod"); st.ExitStatus != exitForced {
		t.Fatalf("exit %d, want %d", st.ExitStatus, exitForced)
	}
	if alive(pid) {
		t.Fatalf("sandbox process %d alive after stop", pid)
	}
	e.fake.SetHook("Kill", nil)
	if err := e.c.Shutdown(e.ctx, "pod"); err != nil {
		t.Fatal(err)
	}
}

// A running sandbox survives a restart of the controller (READY, monitor
// re-armed); an exit after the restart is seen.
func TestRecoveryKeepsRunningSandbox(t *testing.T) {
	e := newFakeEnv(t)
	e.pod("pod")
	pid := e.fake.SandboxPid("pod")
	e.restart()
	if st := e.status("pod"); st != "SANDBOX_READY" {
		t.Fatalf("after restart %s", st)
	}
	if !alive(pid) {
		t.Fatal("recovery killed the sandbox")
	}
	e.fake.Exit("pod", 0)
	e.fake.KillSandbox("pod")
	e.wait("pod")
	if st := e.status("pod"); st != "SANDBOX_NOTREADY" {
		t.Fatalf("after exit %s", st)
	}
}

// An unreadable record: the sandbox is neither killed nor deleted; it is
// reported (log and /sandboxes/exit) and kept NOTREADY until CRI stops and
// removes it, which then tears it down from runsc's state.
func TestCorruptRecordKeptNotReady(t *testing.T) {
	e := newFakeEnv(t)
	e.pod("pod")
	pid := e.fake.SandboxPid("pod")
	rec := filepath.Join(e.dir, "root", "pod.json")
	if err := os.WriteFile(rec, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if !alive(pid) {
		t.Fatal("recovery killed a sandbox it could not read")
	}
	if st := e.status("pod"); st != "SANDBOX_NOTREADY" {
		t.Fatalf("status %s, want NOTREADY", st)
	}
	if st := e.wait("pod"); st.ExitStatus != ExitUnknown {
		t.Fatalf("exit %d", st.ExitStatus)
	}
	found := false
	e.pub.mu.Lock()
	for _, tp := range e.pub.l {
		found = found || tp == "/sandboxes/exit"
	}
	e.pub.mu.Unlock()
	if !found {
		t.Fatal("no /sandboxes/exit event for the unreadable record")
	}
	if _, err := os.Stat(rec); err != nil {
		t.Fatalf("record removed before CRI asked: %v", err)
	}
	if err := e.c.Stop(e.ctx, "pod"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Shutdown(e.ctx, "pod"); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatal("sandbox process alive after CRI removed it")
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Fatalf("record left after shutdown: %v", err)
	}
}

// runsc hanging at create: Start fails within runsc's call deadline with
// the cause, and nothing of the sandbox is left.
func TestStartFailureLeavesNothing(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.SetHook("Start", runscfake.Fail(context.DeadlineExceeded))
	cfg, _ := typeurl.MarshalAny(&runtimeapi.PodSandboxConfig{Hostname: "pod", Linux: &runtimeapi.LinuxPodSandboxConfig{}})
	if err := e.c.Create(e.ctx, sandbox.Sandbox{ID: "pod"}, sandbox.WithOptions(cfg), sandbox.WithNetNSPath("/var/run/netns/x")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Start(e.ctx, "pod"); err == nil {
		t.Fatal("start succeeded")
	}
	if _, err := e.c.Status(e.ctx, "pod", false); err == nil {
		t.Fatal("sandbox still known after a failed start")
	}
	if e.fake.SandboxPid("pod") != 0 {
		t.Fatal("runsc sandbox left")
	}
	for _, d := range []string{filepath.Join(e.dir, "root", "pod.json"), filepath.Join(e.dir, "state", "pod")} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
}

// DialPort serves our running sandboxes only: a pod's port is reached
// through runsc (the fake echoes), a stopped pod is FailedPrecondition, a
// sandbox that is not ours is left to CRI, and a bad port is refused.
func TestDialPort(t *testing.T) {
	e := newFakeEnv(t)
	e.pod("pod")
	conn, handled, err := e.c.DialPort(e.ctx, "pod", 8080)
	if !handled || err != nil {
		t.Fatalf("DialPort: handled %v, %v", handled, err)
	}
	go func() { _, _ = conn.Write([]byte("ping")) }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the forwarded port: %q, %v", buf, err)
	}
	conn.Close()
	if _, handled, _ := e.c.DialPort(e.ctx, "not-ours", 80); handled {
		t.Fatal("a sandbox that is not ours was handled")
	}
	if _, _, err := e.c.DialPort(e.ctx, "pod", 70000); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("port 70000: %v", err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.c.Stop(e.ctx, "pod"))
	if _, handled, err := e.c.DialPort(e.ctx, "pod", 8080); !handled || !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("stopped pod: handled %v, %v", handled, err)
	}
}

func TestPodLimit(t *testing.T) {
	const o = 32 << 20
	for _, tc := range []struct {
		limits map[string]int64
		want   int64
	}{
		{map[string]int64{}, -1},
		{map[string]int64{"a": 15 << 20}, 15<<20 + o},
		{map[string]int64{"a": 15 << 20, "b": 10 << 20}, 25<<20 + o},
		{map[string]int64{"a": 15 << 20, "b": 0}, -1},
	} {
		if got := podLimit(tc.limits, o); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.limits, got, tc.want)
		}
	}
}

// A kill during a record write leaves WriteJSONAtomic's temporary file;
// recovery removes it.
func TestRecoveryRemovesTempRecords(t *testing.T) {
	e := newFakeEnv(t)
	e.pod("pod")
	tmp := filepath.Join(e.dir, "root", tempRecordPrefix+"12345")
	if err := os.WriteFile(tmp, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temporary record left: %v", err)
	}
	if st := e.status("pod"); st != "SANDBOX_READY" {
		t.Fatalf("pod %s after restart", st)
	}
}
