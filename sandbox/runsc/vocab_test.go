package runsc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The control socket's method names are strings in gVisor's runsc/boot
// (which does not build against containerd's runtime-spec): pin them
// against the pinned gVisor's source.
func TestMethodNamesMatchGVisor(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "gvisor.dev/gvisor").Output()
	if err != nil {
		t.Fatalf("go list gvisor.dev/gvisor: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "runsc", "boot", "controller.go"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"ContMgrWait": MethodWait, "ContMgrWaitPID": MethodWaitPID, "ContMgrExecuteAsync": MethodExecuteAsync, "ContMgrPortForward": MethodPortForward, "ContMgrEvent": MethodEvent} {
		if !strings.Contains(string(src), name+" = \""+want+"\"") {
			t.Errorf("gVisor's %s is not %q", name, want)
		}
	}
}
