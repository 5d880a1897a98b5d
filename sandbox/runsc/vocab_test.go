package runsc

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// controllerSource is runsc/boot/controller.go of the pinned gVisor.
func controllerSource(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "gvisor.dev/gvisor").Output()
	if err != nil {
		t.Fatalf("go list gvisor.dev/gvisor: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "runsc", "boot", "controller.go"))
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// The control socket's method names are strings in gVisor's runsc/boot
// (which does not build against containerd's runtime-spec): pin them
// against the pinned gVisor's source.
func TestMethodNamesMatchGVisor(t *testing.T) {
	src := controllerSource(t)
	for name, want := range map[string]string{"ContMgrWait": MethodWait, "ContMgrWaitPID": MethodWaitPID, "ContMgrExecuteAsync": MethodExecuteAsync, "ContMgrPortForward": MethodPortForward, "ContMgrEvent": MethodEvent, "ContMgrSignal": MethodSignal} {
		if !strings.Contains(src, name+" = \""+want+"\"") {
			t.Errorf("gVisor's %s is not %q", name, want)
		}
	}
}

// signalArgs and the delivery modes mirror runsc/boot's SignalArgs and
// SignalDeliveryMode: uRPC matches fields by name, modes by value.
func TestSignalArgsMatchGVisor(t *testing.T) {
	raw := controllerSource(t)
	src := strings.Join(strings.Fields(raw), " ")
	for _, want := range []string{
		"type SignalArgs struct {",
		"CID string", "Signo int32", "PID int32", "Mode SignalDeliveryMode",
		"DeliverToProcess SignalDeliveryMode = iota",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("gVisor's controller.go has no %q", want)
		}
	}
	// DeliverToAllProcesses is the constant right after DeliverToProcess
	// (iota + 1), comments between them aside.
	next := regexp.MustCompile(`DeliverToProcess SignalDeliveryMode = iota\s*(//[^\n]*\n\s*)*DeliverToAllProcesses\n`)
	if !next.MatchString(raw) || deliverToProcess != 0 || deliverToAllProcesses != 1 {
		t.Errorf("DeliverToAllProcesses is not the mode after DeliverToProcess")
	}
}
