package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/core/runtime"
	csandbox "github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/shimless/shimless/sandbox"
	"github.com/shimless/shimless/sandbox/runsc"
	"github.com/shimless/shimless/sandbox/runsc/runscfake"
)

// event is one published event.
type event struct {
	topic string
	ev    any
}

// recorder is an events.Publisher that keeps what was published.
type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) Publish(_ context.Context, topic string, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{topic, ev})
	return nil
}

// topics lists the topics published about container id (exec events
// included), in order, as "topic" or "topic:execID".
func (r *recorder) topics(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		ev, ok := e.ev.(interface{ GetContainerID() string })
		if !ok || ev.GetContainerID() != id {
			continue
		}
		topic := e.topic
		switch ev := e.ev.(type) {
		case *eventstypes.TaskExit:
			if ev.ID != id {
				topic += ":" + ev.ID
			}
		case *eventstypes.TaskExecStarted:
			topic += ":" + ev.ExecID
		case *eventstypes.TaskExecAdded:
			continue
		}
		out = append(out, topic)
	}
	return out
}

func (r *recorder) count(id, topic string) int {
	n := 0
	for _, t := range r.topics(id) {
		if t == topic {
			n++
		}
	}
	return n
}

// env is a controller and a runtime over temp dirs driving a fake runsc.
type env struct {
	t      *testing.T
	dir    string
	fake   *runscfake.Fake
	events *recorder
	c      *sandbox.Controller
	r      *Runtime
	ctx    context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_ = log.SetLevel("error") // the lifecycle logs at info; keep test output readable
	dir := t.TempDir()
	e := &env{t: t, dir: dir, fake: runscfake.New(), events: &recorder{}, ctx: namespaces.WithNamespace(context.Background(), "k8s.io")}
	e.start()
	t.Cleanup(func() {
		e.fake.Close()
		e.c.Close()
	})
	return e
}

// start builds the controller and the runtime from what is on disk (a
// restart of containerd).
func (e *env) start() {
	t := e.t
	t.Helper()
	hosts := filepath.Join(e.dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := sandbox.New(e.ctx, sandbox.Options{
		Runsc:     e.fake.Runner(filepath.Join(e.dir, "runsc")),
		PausePath: hosts, StateDir: filepath.Join(e.dir, "state"), RootDir: filepath.Join(e.dir, "root"),
		CRIRootDir: filepath.Join(e.dir, "cri"), HostsFile: hosts, ResolvConf: hosts,
		StopTimeout: 2 * time.Second, Publisher: e.events, CgroupRoot: filepath.Join(e.dir, "cgroup"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.c != nil {
		e.c.Close() // the previous containerd is gone
	}
	r, err := New(e.ctx, c, filepath.Join(e.dir, "tasks"))
	if err != nil {
		t.Fatal(err)
	}
	e.c, e.r = c, r
}

// pod creates and starts a pod sandbox.
func (e *env) pod(id string) {
	e.t.Helper()
	cfg, err := typeurl.MarshalAny(&runtimeapi.PodSandboxConfig{Hostname: id, Linux: &runtimeapi.LinuxPodSandboxConfig{}})
	if err != nil {
		e.t.Fatal(err)
	}
	info := csandbox.Sandbox{ID: id}
	if err := e.c.Create(e.ctx, info, csandbox.WithOptions(cfg), csandbox.WithNetNSPath("/var/run/netns/x")); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.c.Start(e.ctx, id); err != nil {
		e.t.Fatal(err)
	}
}

// createOpts is a pod container's create request.
func (e *env) createOpts(podID string) runtime.CreateOpts {
	e.t.Helper()
	root := filepath.Join(e.dir, "image")
	if err := os.MkdirAll(root, 0o755); err != nil {
		e.t.Fatal(err)
	}
	spec := &specs.Spec{
		Version: specs.Version, Root: &specs.Root{Path: root}, Process: &specs.Process{Args: []string{"sleep", "1000"}, Cwd: "/"},
		Annotations: map[string]string{runsc.AnnotationContainerType: "container", runsc.AnnotationSandboxID: podID},
		Linux:       &specs.Linux{},
	}
	a, err := typeurl.MarshalAnyToProto(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return runtime.CreateOpts{Spec: a, SandboxID: podID}
}

// rootOpts is the create request of a gVisor-shim style pod's pause
// container (the root of its sandbox), with a cgroup.
func (e *env) rootOpts(id string) runtime.CreateOpts {
	opts := e.createOpts(id)
	var spec specs.Spec
	must(e.t, typeurl.UnmarshalTo(opts.Spec, &spec))
	spec.Annotations = map[string]string{runsc.AnnotationContainerType: runsc.ContainerTypeSandbox, runsc.AnnotationSandboxID: id}
	spec.Linux.CgroupsPath = "/k8s.io/" + id
	spec.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/var/run/netns/x"}}
	a, err := typeurl.MarshalAnyToProto(&spec)
	must(e.t, err)
	opts.Spec = a
	return opts
}

// container creates a container in a pod; started if start is set.
func (e *env) container(podID, id string, start bool) runtime.Task {
	e.t.Helper()
	task, err := e.r.Create(e.ctx, id, e.createOpts(podID))
	if err != nil {
		e.t.Fatal(err)
	}
	if start {
		if err := task.Start(e.ctx); err != nil {
			e.t.Fatal(err)
		}
	}
	return task
}

// exec adds an exec to a task; started if start is set.
func (e *env) exec(task runtime.Task, id string, start bool) runtime.ExecProcess {
	e.t.Helper()
	a, err := typeurl.MarshalAnyToProto(&specs.Process{Args: []string{"true"}, Cwd: "/"})
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := task.Exec(e.ctx, id, runtime.ExecOpts{Spec: a})
	if err != nil {
		e.t.Fatal(err)
	}
	if start {
		if err := p.Start(e.ctx); err != nil {
			e.t.Fatal(err)
		}
	}
	return p
}

// wait waits (bounded) for a process's exit.
func (e *env) wait(p interface {
	Wait(context.Context) (*runtime.Exit, error)
}) *runtime.Exit {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	exit, err := p.Wait(ctx)
	if err != nil {
		e.t.Fatalf("wait: %v", err)
	}
	return exit
}

// editRecord rewrites a task's record (task.json) through edit, as a
// record written by another version, or damaged, would read.
func (e *env) editRecord(id string, edit func(rec map[string]any)) {
	e.t.Helper()
	path := filepath.Join(e.dir, "tasks", "k8s.io", id, "task.json")
	var rec map[string]any
	data, err := os.ReadFile(path)
	must(e.t, err)
	must(e.t, json.Unmarshal(data, &rec))
	edit(rec)
	data, err = json.Marshal(rec)
	must(e.t, err)
	must(e.t, os.WriteFile(path, data, 0o600))
}

// status is a task's state.
func status(t *testing.T, p interface {
	State(context.Context) (runtime.State, error)
}) runtime.Status {
	t.Helper()
	st, err := p.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Status
}

// eventually retries f for up to 10 s.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openFDs counts this process's open file descriptors.
// openFDs lists this process's open fds and what each refers to.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out[e.Name()] = target
	}
	return out
}

// settledFDs is openFDs once the set stops changing (the monitors that
// earlier steps started open their pidfds asynchronously).
func settledFDs(t *testing.T) map[string]string {
	t.Helper()
	prev := openFDs(t)
	for i := 0; i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		cur := openFDs(t)
		if maps.Equal(prev, cur) {
			return cur
		}
		prev = cur
	}
	return prev
}

// newFDs returns the fds open now that were not open (or referred to
// something else) in before, after giving the goroutines of earlier tests
// up to two seconds to close theirs: only an fd that stays is a leak. The
// fd listing /proc/self/fd is not counted.
func newFDs(t *testing.T, before map[string]string) map[string]string {
	t.Helper()
	self := "/proc/" + strconv.Itoa(os.Getpid()) + "/fd"
	deadline := time.Now().Add(2 * time.Second)
	for {
		added := map[string]string{}
		for fd, target := range openFDs(t) {
			if before[fd] != target && target != self {
				added[fd] = target
			}
		}
		if len(added) == 0 || time.Now().After(deadline) {
			return added
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func joined(s []string) string { return strings.Join(s, " ") }

var _ = fmt.Sprint
