package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// isClosed reports whether ch is closed, without blocking.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestTransitionLegal(t *testing.T) {
	type step struct {
		next       State
		wantClosed bool // exited is closed after the step
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"full lifecycle", []step{
			{StateRunning, false},
			{StateStopped, true},
			{StateDeleted, true},
		}},
		{"created to running to stopped", []step{
			{StateRunning, false},
			{StateStopped, true},
		}},
		// A sandbox shut down without ever running releases its waiters.
		{"created to deleted", []step{
			{StateDeleted, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "sandboxes", "sb1.json")
			s := newSandbox(record{ID: "sb1", State: StateCreated}, path, filepath.Join(dir, "bundle"))
			if isClosed(s.exited) {
				t.Fatal("exited closed for a created sandbox")
			}
			persisted := StateCreated
			for i, st := range tc.steps {
				if err := s.transition(st.next, func(r *record) { r.Pid = uint32(100 + i) }); err != nil {
					t.Fatalf("step %d: transition to %s: %v", i, st.next, err)
				}
				rec := s.snapshot()
				if rec.State != st.next {
					t.Errorf("step %d: state = %s, want %s", i, rec.State, st.next)
				}
				if rec.Pid != uint32(100+i) {
					t.Errorf("step %d: update not applied: pid = %d, want %d", i, rec.Pid, 100+i)
				}
				if got := isClosed(s.exited); got != st.wantClosed {
					t.Errorf("step %d (%s): exited closed = %v, want %v", i, st.next, got, st.wantClosed)
				}
				// Every state but deleted is persisted; deleted leaves the
				// last persisted record in place.
				if st.next != StateDeleted {
					persisted = st.next
				}
				if persisted == StateCreated {
					if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("step %d: record exists (err %v), want none", i, err)
					}
					continue
				}
				onDisk, err := readRecord(path)
				if err != nil {
					t.Fatalf("step %d: readRecord: %v", i, err)
				}
				if onDisk.State != persisted {
					t.Errorf("step %d: persisted state = %s, want %s", i, onDisk.State, persisted)
				}
			}
		})
	}
}

func TestTransitionIllegal(t *testing.T) {
	for _, tc := range []struct {
		from, to State
	}{
		{StateCreated, StateStopped},
		{StateCreated, StateCreated},
		{StateRunning, StateCreated},
		{StateRunning, StateRunning},
		{StateRunning, StateDeleted},
		{StateStopped, StateRunning},
		{StateStopped, StateCreated},
		{StateStopped, StateStopped},
		{StateDeleted, StateCreated},
		{StateDeleted, StateRunning},
		{StateDeleted, StateStopped},
		{StateDeleted, StateDeleted},
	} {
		t.Run(string(tc.from)+"->"+string(tc.to), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "sb1.json")
			s := newSandbox(record{ID: "sb1", State: tc.from}, path, dir)
			wasClosed := isClosed(s.exited)
			updated := false
			err := s.transition(tc.to, func(*record) { updated = true })
			if !errdefs.IsFailedPrecondition(err) {
				t.Fatalf("transition(%s -> %s) error = %v, want FailedPrecondition", tc.from, tc.to, err)
			}
			if updated {
				t.Error("update called for an illegal transition")
			}
			if got := s.snapshot().State; got != tc.from {
				t.Errorf("state = %s, want unchanged %s", got, tc.from)
			}
			if got := isClosed(s.exited); got != wasClosed {
				t.Errorf("exited closed = %v, want unchanged %v", got, wasClosed)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("dir holds %v, want nothing written", names)
			}
		})
	}
}

func TestNewSandboxExited(t *testing.T) {
	for _, tc := range []struct {
		state      State
		wantClosed bool
	}{
		{StateCreated, false},
		{StateRunning, false},
		{StateStopped, true},
		{StateDeleted, true},
	} {
		t.Run(string(tc.state), func(t *testing.T) {
			s := newSandbox(record{ID: "sb1", State: tc.state}, filepath.Join(t.TempDir(), "sb1.json"), "")
			if got := isClosed(s.exited); got != tc.wantClosed {
				t.Errorf("exited closed = %v, want %v", got, tc.wantClosed)
			}
		})
	}
}

// A record that cannot be written (a full disk) fails a requested
// transition and leaves the sandbox as it was; an exit is a fact: it is
// applied and its waiters are woken, and the write error is returned.
func TestTransitionWriteFailure(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		from, to     State
		want         State
		wantExited   bool
		wantExitCode uint32
	}{
		{"start is refused", StateCreated, StateRunning, StateCreated, false, 0},
		{"exit is applied", StateRunning, StateStopped, StateStopped, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(record{ID: "sb1", State: tc.from}, filepath.Join(notDir, "sb1.json"), dir)
			if err := s.transition(tc.to, func(r *record) { r.ExitStatus = 1 }); err == nil {
				t.Fatal("transition returned no error, want the write error")
			}
			rec := s.snapshot()
			if rec.State != tc.want || rec.ExitStatus != tc.wantExitCode {
				t.Errorf("record = state %s exit %d, want %s %d", rec.State, rec.ExitStatus, tc.want, tc.wantExitCode)
			}
			if isClosed(s.exited) != tc.wantExited {
				t.Errorf("exited closed = %v, want %v (Wait must not hang on a sandbox that exited)", isClosed(s.exited), tc.wantExited)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		rec  record
	}{
		{"minimal", record{ID: "sb1", Namespace: "k8s.io", State: StateCreated, CreatedAt: created}},
		{"full", record{
			ID:            "sb2",
			Namespace:     "k8s.io",
			State:         StateStopped,
			Labels:        map[string]string{"a": "b"},
			Config:        []byte{0x0a, 0x03, 'f', 'o', 'o'},
			NetNSPath:     "/var/run/netns/cni-1",
			HostNetwork:   true,
			CgroupsPath:   "kubepods-pod1.slice:cri-containerd:sb2",
			SandboxCgroup: "kubepods-pod1.slice",
			Flags:         map[string]string{"network": "host", "systemd-cgroup": "true"},
			Pid:           4242,
			CreatedAt:     created,
			ExitedAt:      created.Add(time.Minute),
			ExitStatus:    137,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "sub", tc.rec.ID+".json")
			// Write twice: the second write replaces the first atomically.
			stale := tc.rec
			stale.State = StateRunning
			for _, r := range []record{stale, tc.rec} {
				if err := writeRecord(path, r); err != nil {
					t.Fatalf("writeRecord: %v", err)
				}
			}
			got, err := readRecord(path)
			if err != nil {
				t.Fatalf("readRecord: %v", err)
			}
			if !reflect.DeepEqual(got, tc.rec) {
				t.Errorf("readRecord = %+v, want %+v", got, tc.rec)
			}
			if names := dirNames(t, filepath.Dir(path)); !reflect.DeepEqual(names, []string{tc.rec.ID + ".json"}) {
				t.Errorf("record dir holds %v, want only the record", names)
			}
		})
	}
}

func TestReadRecordErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := readRecord(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readRecord(missing) error = %v, want ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readRecord(bad); err == nil {
		t.Error("readRecord(bad JSON) succeeded, want an error")
	}
}
