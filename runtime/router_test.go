package runtime

import (
	"context"
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
)

// fakeRuntime records what Create received.
type fakeRuntime struct {
	name    string
	created []runtime.CreateOpts
}

func (f *fakeRuntime) ID() string { return f.name }
func (f *fakeRuntime) Create(_ context.Context, _ string, opts runtime.CreateOpts) (runtime.Task, error) {
	f.created = append(f.created, opts)
	return nil, nil
}
func (f *fakeRuntime) Get(context.Context, string) (runtime.Task, error) {
	return nil, errdefs.ErrNotFound
}
func (f *fakeRuntime) Tasks(context.Context, bool) ([]runtime.Task, error) { return nil, nil }
func (f *fakeRuntime) Delete(context.Context, string) (*runtime.Exit, error) {
	return nil, errdefs.ErrNotFound
}

type owner map[string]bool

func (o owner) OwnsSandbox(id string) bool { return o[id] }

func TestRouterCreate(t *testing.T) {
	ioOwner, err := typeurl.MarshalAny(&options.Options{IoUid: 1000, IoGid: 2000})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		opts        runtime.CreateOpts
		wantRunsc   bool
		wantTaskOpt bool // task options still present where it went
	}{
		{"runc keeps runc options", runtime.CreateOpts{Runtime: "io.containerd.runc.v2", TaskOptions: ioOwner}, false, true},
		{"runc by path keeps runc options", runtime.CreateOpts{Runtime: "/usr/bin/containerd-shim-runc-v2", TaskOptions: ioOwner}, false, true},
		{"other shims get their options untouched", runtime.CreateOpts{Runtime: "io.containerd.kata.v2", TaskOptions: ioOwner}, false, true},
		{"runsc sandbox member", runtime.CreateOpts{Runtime: "io.containerd.runc.v2", SandboxID: "pod1"}, true, false},
		{"runsc runtime name", runtime.CreateOpts{Runtime: RunscRuntimeType}, true, false},
		{"runsc takes no task options", runtime.CreateOpts{Runtime: RunscRuntimeType, TaskOptions: ioOwner}, true, false},
		{"unknown sandbox goes to stock", runtime.CreateOpts{Runtime: "io.containerd.runc.v2", SandboxID: "pod2"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stock, runsc := &fakeRuntime{name: "stock"}, &fakeRuntime{name: "runsc"}
			r := NewRouter(stock, runsc, owner{"pod1": true})
			if _, err := r.Create(context.Background(), "c1", tc.opts); err != nil {
				t.Fatal(err)
			}
			got := stock
			if tc.wantRunsc {
				got = runsc
			}
			if len(got.created) != 1 {
				t.Fatalf("task did not reach %s (stock %d, runsc %d)", got.name, len(stock.created), len(runsc.created))
			}
			if has := got.created[0].TaskOptions != nil; has != tc.wantTaskOpt {
				t.Errorf("task options present = %v, want %v", has, tc.wantTaskOpt)
			}
		})
	}
}

func TestRouterWithoutRunsc(t *testing.T) {
	stock := &fakeRuntime{name: "stock"}
	r := NewRouter(stock, nil, nil)
	if _, err := r.Create(context.Background(), "c1", runtime.CreateOpts{Runtime: RunscRuntimeType}); err != nil {
		t.Fatal(err)
	}
	if len(stock.created) != 1 {
		t.Fatalf("without runsc every task goes to the stock runtime")
	}
}
