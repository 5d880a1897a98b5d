package runsc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseStateFileName(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cid, sid string
		ok       bool
	}{
		{"web_sandbox:pod.state", "web", "pod", true},
		{"pod_sandbox:pod.state", "pod", "pod", true},
		{"a.b-c_sandbox:x-y.z.state", "a.b-c", "x-y.z", true},
		{"web_sandbox:pod.lock", "", "", false},
		{"runsc-pod.sock", "", "", false},
		{"_sandbox:pod.state", "", "", false},
		{"web_sandbox:.state", "", "", false},
		{"web.state", "", "", false},
	} {
		cid, sid, ok := ParseStateFileName(tc.name)
		if cid != tc.cid || sid != tc.sid || ok != tc.ok {
			t.Errorf("ParseStateFileName(%q) = %q, %q, %v; want %q, %q, %v", tc.name, cid, sid, ok, tc.cid, tc.sid, tc.ok)
		}
	}
}

func TestSandboxProcesses(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"pod_sandbox:pod.state":    `{"id":"pod","goferPid":11,"sandbox":{"pid":10}}`,
		"web_sandbox:pod.state":    `{"id":"web","goferPid":12,"sandbox":{"pid":10}}`,
		"web2_sandbox:web2.state":  `{"id":"web2","goferPid":21,"sandbox":{"pid":20}}`,
		"podx_sandbox:podx.state":  `{"id":"podx","goferPid":31,"sandbox":{"pid":30}}`,
		"broken_sandbox:pod.state": `{`,
		"pod_sandbox:pod.lock":     ``,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &Client{Root: root}
	got := c.SandboxProcesses("pod")
	slices.Sort(got)
	if want := []int{10, 11, 12}; !slices.Equal(got, want) {
		t.Errorf("SandboxProcesses(pod) = %v, want %v (exact sandbox id, not a prefix)", got, want)
	}
	ids := c.Containers("pod")
	slices.Sort(ids)
	if want := []string{"broken", "pod", "web"}; !slices.Equal(ids, want) {
		t.Errorf("Containers(pod) = %v, want %v", ids, want)
	}
	if got := c.SandboxProcesses("web"); len(got) != 0 {
		t.Errorf("SandboxProcesses(web) = %v: web is a container, not a sandbox", got)
	}
}
