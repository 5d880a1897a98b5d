package runtime

// The lifecycle through the runsc seam: each test drives a defect found on
// the stop-6 code (issue 10) with the fake runsc, and the races with -race.

import (
	"context"
	"errors"
	"fmt"
	"github.com/containerd/cgroups/v3"
	"github.com/shimless/shimless/sandbox"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/shimless/shimless/sandbox/runsc/runscfake"
)

// An exec started while its container exits: never a double close of its
// exit channel (a panic that took containerd down), its Wait returns, and
// its exit is published before its container's, at most once. The first
// case is deterministic: the container's exit is delivered while runsc
// exec is in flight; the second races the two freely.
func TestExecStartRacesContainerExit(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	check := func(id string, task runtime.Task, p runtime.ExecProcess) {
		t.Helper()
		e.wait(task)
		e.wait(p)
		topics := e.events.topics(id)
		exits := 0
		for j, tp := range topics {
			if tp == "/tasks/exit:probe" {
				exits++
				for _, before := range topics[:j] {
					if before == "/tasks/exit" {
						t.Fatalf("%s: exec exit after its container's: %s", id, joined(topics))
					}
				}
			}
		}
		if exits > 1 {
			t.Fatalf("%s: exec exit published %d times", id, exits)
		}
		_, _ = p.Delete(e.ctx)
		if _, err := e.r.Delete(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	task := e.container("pod", "c0", true)
	p := e.exec(task, "probe", false)
	e.fake.SetHook("Exec", func(ctx context.Context, _, _ string) error {
		task.(*Task).exit(ctx, 0) // the exit watch delivers the exit now
		return nil
	})
	if err := p.Start(e.ctx); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("exec start across its container's exit: %v, want FailedPrecondition", err)
	}
	e.fake.SetHook("Exec", nil)
	check("c0", task, p)

	for i := range 30 {
		id := fmt.Sprintf("c%d", i+1)
		task := e.container("pod", id, true)
		p := e.exec(task, "probe", false)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = p.Start(e.ctx) }()
		go func() { defer wg.Done(); e.fake.Exit(id, 0) }()
		wg.Wait()
		check(id, task, p)
	}
}

// Two Deletes at once: one succeeds, the other is NotFound, one TaskDelete.
func TestDeleteRacesDelete(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	for i := range 20 {
		id := fmt.Sprintf("c%d", i)
		task := e.container("pod", id, true)
		e.fake.Exit(id, 3)
		e.wait(task)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for k := range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[k] = e.r.Delete(e.ctx, id) }()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errdefs.IsNotFound(err) {
				t.Fatalf("second delete: %v, want NotFound", err)
			}
		}
		if ok != 1 || e.events.count(id, "/tasks/delete") != 1 {
			t.Fatalf("%s: %d deletes succeeded, %d TaskDelete events", id, ok, e.events.count(id, "/tasks/delete"))
		}
	}
}

// Kill of a created task racing its Start: no panic, the task ends
// stopped, Wait returns, nothing stays running in runsc.
func TestKillRacesStart(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	for i := range 20 {
		id := fmt.Sprintf("c%d", i)
		task := e.container("pod", id, false)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = task.Start(e.ctx) }()
		go func() { defer wg.Done(); _ = task.Kill(e.ctx, uint32(unix.SIGKILL), true) }()
		wg.Wait()
		// Whichever won, the task ends.
		_ = task.Kill(e.ctx, uint32(unix.SIGKILL), true)
		e.wait(task)
		if st := status(t, task); st != runtime.StoppedStatus {
			t.Fatalf("%s: %v after kill, want stopped", id, st)
		}
		if c := e.fake.Container(id); c != nil && c.Status == "running" {
			t.Fatalf("%s: still running in runsc", id)
		}
		if _, err := e.r.Delete(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// A record write that fails (a full disk) never wedges a task: its exit is
// applied and Wait returns; Delete still works.
func TestRecordWriteFailureDoesNotWedge(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	task := e.container("pod", "c1", true)
	defer func(w func(string, any) error) { writeJSON = w }(writeJSON)
	writeJSON = func(string, any) error { return fmt.Errorf("write: %w", syscall.ENOSPC) }
	e.fake.Exit("c1", 7)
	if exit := e.wait(task); exit.Status != 7 {
		t.Fatalf("exit %d, want 7", exit.Status)
	}
	if _, err := e.r.Delete(e.ctx, "c1"); err != nil {
		t.Fatalf("delete with a full disk: %v", err)
	}
}

// A runsc that hangs on SIGKILL: Kill returns within its bound, the
// sandbox's process tree is killed and the container reads 137.
func TestHungKillEscalates(t *testing.T) {
	defer func(d time.Duration) { killBound = d }(killBound)
	killBound = 300 * time.Millisecond
	e := newEnv(t)
	e.pod("pod")
	task := e.container("pod", "c1", true)
	pid := e.fake.SandboxPid("pod")
	e.fake.SetHook("Kill", runscfake.Hang)
	begin := time.Now()
	if err := task.Kill(e.ctx, uint32(unix.SIGKILL), true); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Fatalf("kill took %s", took)
	}
	if exit := e.wait(task); exit.Status != 137 {
		t.Fatalf("exit %d, want 137", exit.Status)
	}
	if unix.Kill(pid, 0) == nil && !zombie(pid) {
		t.Fatalf("sandbox process %d still alive", pid)
	}
}

func zombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || len(data) > 0 && containsState(string(data), 'Z')
}

func containsState(stat string, st byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' && i+2 < len(stat) {
			return stat[i+2] == st
		}
	}
	return false
}

// A signal other than SIGKILL to a hung sandbox: Unavailable within the
// bound, the task keeps running.
func TestHungSignalUnavailable(t *testing.T) {
	defer func(d time.Duration) { killBound = d }(killBound)
	killBound = 300 * time.Millisecond
	e := newEnv(t)
	e.pod("pod")
	task := e.container("pod", "c1", true)
	e.fake.SetHook("Kill", runscfake.Hang)
	if err := task.Kill(e.ctx, uint32(unix.SIGTERM), false); !errdefs.IsUnavailable(err) {
		t.Fatalf("SIGTERM to a hung sandbox: %v, want Unavailable", err)
	}
	if st := status(t, task); st != runtime.RunningStatus {
		t.Fatalf("%v, want running", st)
	}
	e.fake.SetHook("Kill", nil)
}

// setOOMKills writes a fake pod cgroup's OOM kill counter (v1 and v2).
func (e *env) setOOMKills(rel string, n int) {
	for _, f := range []string{filepath.Join(e.dir, "cgroup", "memory", rel, "memory.oom_control"), filepath.Join(e.dir, "cgroup", rel, "memory.events")} {
		must(e.t, os.MkdirAll(filepath.Dir(f), 0o755))
		must(e.t, os.WriteFile(f, []byte(fmt.Sprintf("oom_kill_disable 0\nunder_oom 0\noom_kill %d\n", n)), 0o644))
	}
}

// An OOM kill of the sandbox seen first as the sandbox's death (before the
// OOM event, which may never come): the cgroup's counter confirms it, the
// containers' lost exits read 137 and TaskOOM comes before TaskExit.
func TestSandboxOOMBeforeExit(t *testing.T) {
	e := newEnv(t)
	e.setOOMKills("k8s.io/pod", 0)
	e.pod("pod")
	task := e.container("pod", "c1", true)
	e.setOOMKills("k8s.io/pod", 1)
	e.fake.KillSandbox("pod")
	if exit := e.wait(task); exit.Status != 137 {
		t.Fatalf("exit %d, want 137", exit.Status)
	}
	topics := e.events.topics("c1")
	if joined(topics) != "/tasks/create /tasks/start /tasks/oom /tasks/exit" {
		t.Fatalf("events %s", joined(topics))
	}
}

// Pause is persisted: a paused container reads paused after a restart.
func TestPauseSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	task := e.container("pod", "c1", true)
	must(t, task.Pause(e.ctx))
	e.start() // containerd restarts
	got, err := e.r.Get(e.ctx, "c1")
	must(t, err)
	if st := status(t, got); st != runtime.PausedStatus {
		t.Fatalf("after restart %v, want paused", st)
	}
	must(t, got.Resume(e.ctx))
	if st := status(t, got); st != runtime.RunningStatus {
		t.Fatalf("after resume %v, want running", st)
	}
}

// A runsc state that fails (a timeout under load) during recovery does not
// count as an exit: the container stays running and its exit is seen later.
// (Recovery asks runsc state only for a record without the sandbox's pid.)
func TestRecoveryStateErrorIsNotExit(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	e.container("pod", "c1", true)
	e.c.Close()
	e.editRecord("c1", func(rec map[string]any) { rec["pid"] = 0 })
	e.fake.SetHook("State", runscfake.Fail(context.DeadlineExceeded))
	e.start()
	e.fake.SetHook("State", nil)
	task, err := e.r.Get(e.ctx, "c1")
	must(t, err)
	if st := status(t, task); st != runtime.RunningStatus {
		t.Fatalf("after recovery %v, want running", st)
	}
	e.fake.Exit("c1", 4)
	if exit := e.wait(task); exit.Status != 4 {
		t.Fatalf("exit %d, want 4", exit.Status)
	}
}

// Recovery asks runsc nothing (no runsc state per container): a running
// container is re-attached from its sandbox process, and an exit that
// happened while containerd was down is reported with its status by the
// exit watch, which asks the sandbox.
func TestRecoveryAsksRunscNothing(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	e.container("pod", "up", true)
	e.container("pod", "ended", true)
	e.c.Close()             // containerd is down
	e.fake.Exit("ended", 3) // nobody watches
	e.fake.SetHook("State", runscfake.Fail(errors.New("runsc state during recovery")))
	before := e.fake.Calls("State")
	e.start()
	if n := e.fake.Calls("State") - before; n != 0 {
		t.Errorf("recovery ran runsc state %d times", n)
	}
	up, err := e.r.Get(e.ctx, "up")
	must(t, err)
	if st := status(t, up); st != runtime.RunningStatus {
		t.Fatalf("running container after recovery: %v", st)
	}
	ended, err := e.r.Get(e.ctx, "ended")
	must(t, err)
	if exit := e.wait(ended); exit.Status != 3 {
		t.Fatalf("exit while down reported as %d, want 3", exit.Status)
	}
	e.fake.Exit("up", 5)
	if exit := e.wait(up); exit.Status != 5 {
		t.Fatalf("exit after recovery %d, want 5", exit.Status)
	}
}

// A container its sandbox no longer knows (ended and removed while
// containerd was down) ends with an unknown status after recovery instead
// of being watched for good; one whose sandbox died ends too.
func TestRecoveryLostContainers(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	e.pod("dead")
	e.container("pod", "forgotten", true)
	e.container("dead", "orphan", true)
	e.c.Close()
	e.fake.Forget("forgotten")
	e.fake.KillSandbox("dead")
	e.start()
	for _, id := range []string{"forgotten", "orphan"} {
		task, err := e.r.Get(e.ctx, id)
		must(t, err)
		if exit := e.wait(task); exit.Status != exitUnknown {
			t.Errorf("%s: exit %d, want %d (unknown)", id, exit.Status, exitUnknown)
		}
	}
}

// A gVisor-shim style pod's container is recovered in its root sandbox,
// whether it is recovered before its root task or after, and from a record
// written before records named the sandbox's kind: it stays running, and
// its sandbox's death ends it.
func TestRecoveryShimStyleContainer(t *testing.T) {
	for _, oldRecord := range []bool{false, true} {
		t.Run(fmt.Sprintf("oldRecord=%v", oldRecord), func(t *testing.T) {
			e := newEnv(t)
			root, err := e.r.Create(e.ctx, "pause", e.rootOpts("pause"))
			must(t, err)
			must(t, root.Start(e.ctx))
			e.container("pause", "a-first", true) // recovered before "pause"
			e.container("pause", "z-last", true)  // and after it
			e.c.Close()
			if oldRecord {
				for _, id := range []string{"a-first", "z-last"} {
					e.editRecord(id, func(rec map[string]any) {
						if rec["inRoot"] != true {
							t.Fatalf("%s: record does not say it is in a root sandbox: %v", id, rec)
						}
						delete(rec, "inRoot")
					})
				}
			}
			e.start()
			var tasks []runtime.Task
			for _, id := range []string{"a-first", "z-last", "pause"} {
				task, err := e.r.Get(e.ctx, id)
				must(t, err)
				if st := status(t, task); st != runtime.RunningStatus {
					t.Fatalf("%s after recovery: %v, want running", id, st)
				}
				tasks = append(tasks, task)
			}
			e.fake.KillSandbox("pause")
			for _, task := range tasks {
				if exit := e.wait(task); exit.Status != exitUnknown {
					t.Errorf("%s: exit %d, want %d", task.ID(), exit.Status, exitUnknown)
				}
			}
		})
	}
}

// A plain container (joins its pod, no TTY) runs no runsc process at
// Create: one runsc run at Start creates and starts it. Before its start
// an update goes into its bundle, it has no processes, and a restart keeps
// it startable.
func TestPlainContainerCreatedByRunAtStart(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	creates, runs := e.fake.Calls("Create"), e.fake.Calls("Run")
	task := e.container("pod", "c1", false)
	if n := e.fake.Calls("Create") - creates; n != 0 {
		t.Fatalf("Create ran runsc create %d times", n)
	}
	if e.fake.Container("c1") != nil {
		t.Fatal("runsc knows the container before its start")
	}
	if pid, err := task.PID(e.ctx); err != nil || pid != uint32(e.fake.SandboxPid("pod")) {
		t.Fatalf("pid before start %d (%v), want the sandbox's %d", pid, err, e.fake.SandboxPid("pod"))
	}
	if pids, err := task.Pids(e.ctx); err != nil || len(pids) != 0 {
		t.Fatalf("pids before start %v %v", pids, err)
	}
	limit := int64(64 << 20)
	must(t, task.Update(e.ctx, mustAny(t, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}), nil))
	spec, err := os.ReadFile(filepath.Join(e.dir, "tasks", "k8s.io", "c1", "config.json"))
	must(t, err)
	if !strings.Contains(string(spec), `"limit":67108864`) {
		t.Fatalf("update before start did not reach the bundle: %s", spec)
	}
	// containerd restarts between create and start.
	e.c.Close()
	e.start()
	task, err = e.r.Get(e.ctx, "c1")
	must(t, err)
	must(t, task.Start(e.ctx))
	if n := e.fake.Calls("Run") - runs; n != 1 {
		t.Fatalf("Start ran runsc run %d times, want 1", n)
	}
	if c := e.fake.Container("c1"); c == nil || c.Status != "running" {
		t.Fatalf("runsc container after start: %+v", c)
	}
	e.fake.Exit("c1", 7)
	if exit := e.wait(task); exit.Status != 7 {
		t.Fatalf("exit %d, want 7", exit.Status)
	}
	if _, err := e.r.Delete(e.ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	// Killed before its start: it ends (137) and is deleted; runsc never
	// ran it.
	task = e.container("pod", "c2", false)
	must(t, task.Kill(e.ctx, uint32(unix.SIGKILL), true))
	if exit := e.wait(task); exit.Status != 137 {
		t.Fatalf("kill before start: exit %d, want 137", exit.Status)
	}
	if _, err := e.r.Delete(e.ctx, "c2"); err != nil {
		t.Fatal(err)
	}
}

// An unreadable task record: recovery keeps the task's directory and does
// not delete its runsc container.
func TestRecoveryKeepsUnreadableRecord(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	e.container("pod", "c1", true)
	rec := filepath.Join(e.dir, "tasks", "k8s.io", "c1", "task.json")
	must(t, os.WriteFile(rec, []byte("{garbage"), 0o600))
	e.start()
	if _, err := os.Stat(rec); err != nil {
		t.Fatalf("record removed: %v", err)
	}
	if c := e.fake.Container("c1"); c == nil || c.Status != "running" {
		t.Fatalf("runsc container touched: %+v", c)
	}
}

// PluginInfo does not cache a failure.
func TestPluginInfoRetriesAfterError(t *testing.T) {
	e := newEnv(t)
	e.fake.SetHook("Features", runscfake.Fail(errors.New("runsc busy")))
	if _, err := e.r.PluginInfo(e.ctx, nil); err == nil {
		t.Fatal("PluginInfo succeeded while runsc failed")
	}
	e.fake.SetHook("Features", nil)
	if _, err := e.r.PluginInfo(e.ctx, nil); err != nil {
		t.Fatalf("PluginInfo after runsc recovered: %v", err)
	}
}

// A create that fails after runsc create leaks nothing: no fd, no task
// directory, no runsc container.
func TestCreateFailureLeaksNothing(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	e.container("pod", "warm", false) // warm up lazily opened fds
	before := settledFDs(t)
	orig := writeJSON
	writeJSON = func(string, any) error { return fmt.Errorf("write: %w", syscall.ENOSPC) }
	_, err := e.r.Create(e.ctx, "c1", e.createOpts("pod"))
	writeJSON = orig
	if err == nil {
		t.Fatal("create succeeded without its record")
	}
	if leaked := newFDs(t, before); len(leaked) > 0 {
		t.Fatalf("fds leaked: %v", leaked)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "tasks", "k8s.io", "c1")); !os.IsNotExist(err) {
		t.Fatalf("task dir left: %v", err)
	}
	if e.fake.Container("c1") != nil {
		t.Fatal("runsc container left")
	}
	if _, err := e.r.Get(e.ctx, "c1"); !errdefs.IsNotFound(err) {
		t.Fatalf("get after failed create: %v", err)
	}
}

// Illegal operations are FailedPrecondition, never a panic.
func TestIllegalTransitions(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	task := e.container("pod", "c1", true)
	if err := task.Start(e.ctx); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("second start: %v", err)
	}
	if _, err := e.r.Delete(e.ctx, "c1"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("delete of a running task: %v", err)
	}
	p := e.exec(task, "x", true)
	if err := p.Start(e.ctx); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("second exec start: %v", err)
	}
	if _, err := p.Delete(e.ctx); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("delete of a running exec: %v", err)
	}
	e.fake.Exit("c1", 0)
	e.wait(task)
	e.wait(p)
	if err := task.Pause(e.ctx); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("pause of a stopped task: %v", err)
	}
	if _, err := task.Exec(e.ctx, "y", runtime.ExecOpts{Spec: nil}); err == nil {
		t.Errorf("exec in a stopped task succeeded")
	}
}

// A sandbox that dies without an OOM kill (its counter unchanged), as the
// cgroup v1 eventfd also fires on cgroup removal: exit unknown, no OOM.
func TestSandboxDeathWithoutOOM(t *testing.T) {
	e := newEnv(t)
	e.setOOMKills("k8s.io/pod", 3)
	e.pod("pod")
	task := e.container("pod", "c1", true)
	e.fake.KillSandbox("pod")
	if exit := e.wait(task); exit.Status != exitUnknown {
		t.Fatalf("exit %d, want %d", exit.Status, exitUnknown)
	}
	if n := e.events.count("c1", "/tasks/oom"); n != 0 {
		t.Fatalf("%d OOM events without an OOM kill", n)
	}
}

// A gVisor-shim style pod (its pause container a root task here) whose
// sandbox is OOM-killed: the root and its containers end (137, OOM first)
// instead of waiting forever on a control socket nobody answers; they can
// then be deleted and nothing of the root is left registered.
func TestShimStyleSandboxOOMKilled(t *testing.T) {
	e := newEnv(t)
	e.setOOMKills("k8s.io/pause", 0)
	root, err := e.r.Create(e.ctx, "pause", e.rootOpts("pause"))
	must(t, err)
	must(t, root.Start(e.ctx))
	task := e.container("pause", "c1", true)
	e.setOOMKills("k8s.io/pause", 1)
	e.fake.KillSandbox("pause")
	for _, p := range []runtime.Task{task, root} {
		if exit := e.wait(p); exit.Status != exitKilled {
			t.Fatalf("%s: exit %d, want %d", p.ID(), exit.Status, exitKilled)
		}
	}
	if got := joined(e.events.topics("c1")); got != "/tasks/create /tasks/start /tasks/oom /tasks/exit" {
		t.Fatalf("c1 events: %s", got)
	}
	for _, id := range []string{"c1", "pause"} {
		if _, err := e.r.Delete(e.ctx, id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if _, err := e.r.Create(e.ctx, "c2", e.createOpts("pause")); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("container in a removed root sandbox: %v", err)
	}
}

// runsc hanging at each call: the call returns at its deadline with an
// error, the task stays in a state it can leave (nothing half-done), and
// once runsc answers again the task can be finished and removed.
func TestRunscHangsAtEachCall(t *testing.T) {
	for _, method := range []string{"Create", "Run", "Start", "Exec", "Pause", "Kill", "Delete", "Update"} {
		t.Run(method, func(t *testing.T) {
			defer func(d time.Duration) { killBound = d }(killBound)
			killBound = 200 * time.Millisecond
			e := newEnv(t)
			e.pod("pod")
			var task runtime.Task
			if method != "Create" {
				task = e.container("pod", "c1", method != "Start" && method != "Run")
			}
			e.fake.SetHook(method, runscfake.Hang)
			ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
			defer cancel()
			begin := time.Now()
			var err error
			switch method {
			case "Create":
				// A plain container runs no runsc process until Start
				// (runsc run): a root container is created here.
				_, err = e.r.Create(ctx, "c1", e.rootOpts("c1"))
			case "Start", "Run":
				err = task.Start(ctx)
			case "Exec":
				err = e.exec(task, "x", false).Start(ctx)
			case "Pause":
				err = task.Pause(ctx)
			case "Kill":
				err = task.Kill(ctx, uint32(unix.SIGTERM), false)
			case "Delete":
				e.fake.SetHook(method, nil)
				must(t, task.Kill(e.ctx, uint32(unix.SIGKILL), true))
				e.wait(task)
				e.fake.SetHook(method, runscfake.Hang)
				_, err = e.r.Delete(ctx, "c1")
			case "Update":
				err = task.Update(ctx, mustAny(t, &specs.LinuxResources{}), nil)
			}
			if err == nil {
				t.Fatalf("%s succeeded while runsc hung", method)
			}
			if took := time.Since(begin); took > 3*time.Second {
				t.Fatalf("%s took %s", method, took)
			}
			e.fake.SetHook(method, nil)
			if method == "Create" {
				if _, err := os.Stat(filepath.Join(e.dir, "tasks", "k8s.io", "c1")); !os.IsNotExist(err) {
					t.Fatalf("task dir left after a hung create: %v", err)
				}
				return
			}
			// runsc answers again: the task can be finished and removed.
			if st := status(t, task); st != runtime.StoppedStatus {
				if err := task.Kill(e.ctx, uint32(unix.SIGKILL), true); err != nil {
					t.Fatalf("kill after %s hung: %v", method, err)
				}
			}
			e.wait(task)
			if _, err := e.r.Delete(e.ctx, "c1"); err != nil {
				t.Fatalf("delete after %s hung: %v", method, err)
			}
		})
	}
}

func mustAny(t *testing.T, v any) *types.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	must(t, err)
	return a
}

// Every lifecycle call racing every other on the same tasks (run with
// -race): no panic, no deadlock, and every task ends with exactly one init
// exit and one delete event.
func TestLifecycleCallsRaceEachOther(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		task := e.container("pod", id, false)
		ops := []func(){
			func() { _ = task.Start(e.ctx) },
			func() { _ = task.Kill(e.ctx, uint32(unix.SIGKILL), true) },
			func() { _ = task.Kill(e.ctx, uint32(unix.SIGTERM), false) },
			func() { _ = task.Pause(e.ctx) },
			func() { _ = task.Resume(e.ctx) },
			func() { _, _ = task.State(e.ctx) },
			func() { _, _ = task.Stats(e.ctx) },
			func() { _ = task.Update(e.ctx, mustAny(t, &specs.LinuxResources{}), nil) },
			func() {
				a := mustAny(t, &specs.Process{Args: []string{"true"}, Cwd: "/"})
				if p, err := task.Exec(e.ctx, fmt.Sprintf("x%d", time.Now().UnixNano()), runtime.ExecOpts{Spec: a}); err == nil {
					_ = p.Start(e.ctx)
					_ = p.Kill(e.ctx, uint32(unix.SIGKILL), false)
					_, _ = p.Delete(e.ctx)
				}
			},
			func() { e.fake.Exit(id, 1) },
			func() { _, _ = e.r.Delete(e.ctx, id) },
		}
		for k := range 3 * len(ops) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ops[(k*7+i)%len(ops)]()
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("lifecycle calls deadlocked")
	}
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		if task, err := e.r.Get(e.ctx, id); err == nil {
			_ = task.Resume(e.ctx)
			_ = task.Kill(e.ctx, uint32(unix.SIGKILL), true)
			e.wait(task)
			if _, err := e.r.Delete(e.ctx, id); err != nil {
				t.Fatalf("%s: delete: %v", id, err)
			}
		}
		// One exit for a task that started (or was killed before it
		// could); a task deleted before it ran has none. Never after the
		// delete.
		topics := e.events.topics(id)
		exits, started := e.events.count(id, "/tasks/exit"), e.events.count(id, "/tasks/start")
		if exits > 1 || (started == 1 && exits != 1) || (exits == 1 && topics[len(topics)-1] != "/tasks/delete") {
			t.Errorf("%s: events %s", id, joined(topics))
		}
		if got := e.events.count(id, "/tasks/delete"); got != 1 {
			t.Errorf("%s: %d deletes", id, got)
		}
	}
}

// The sandbox cgroup's memory limit follows its containers' (gVisor does
// not enforce a container's limit inside the sandbox): the sum plus the
// overhead while every container has one, unlimited otherwise, back to the
// sum when the unlimited one is deleted; a restart keeps it.
func TestSandboxMemoryFollowsContainers(t *testing.T) {
	e := newEnv(t)
	e.pod("pod")
	file := filepath.Join(e.dir, "cgroup", "memory", "k8s.io", "pod", "memory.limit_in_bytes")
	if cgroups.Mode() == cgroups.Unified {
		file = filepath.Join(e.dir, "cgroup", "k8s.io", "pod", "memory.max")
	}
	must(t, os.MkdirAll(filepath.Dir(file), 0o755))
	read := func() string {
		b, _ := os.ReadFile(file)
		return string(b)
	}
	limited := func(id string, limit int64) runtime.Task {
		opts := e.createOpts("pod")
		var spec specs.Spec
		must(t, typeurl.UnmarshalTo(opts.Spec, &spec))
		spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		opts.Spec = mustAny(t, &spec)
		task, err := e.r.Create(e.ctx, id, opts)
		must(t, err)
		return task
	}
	unlimited := "-1"
	if cgroups.Mode() == cgroups.Unified {
		unlimited = "max"
	}
	limited("a", 15<<20)
	if got, want := read(), fmt.Sprint(15<<20+sandbox.DefaultMemoryOverhead); got != want {
		t.Fatalf("one limited container: %q, want %q", got, want)
	}
	e.container("pod", "b", false)
	if got := read(); got != unlimited {
		t.Fatalf("with an unlimited container: %q, want %q", got, unlimited)
	}
	if _, err := e.r.Delete(e.ctx, "b"); err != nil {
		t.Fatal(err)
	}
	limited("c", 10<<20)
	want := fmt.Sprint(25<<20 + sandbox.DefaultMemoryOverhead)
	if got := read(); got != want {
		t.Fatalf("two limited containers: %q, want %q", got, want)
	}
	must(t, os.WriteFile(file, []byte("0"), 0o644))
	e.start() // restart: the limits come back from the records
	e.container("pod", "d", false)
	e.r.Delete(e.ctx, "d")
	if got := read(); got != want {
		t.Fatalf("after restart: %q, want %q", got, want)
	}
}
