package runsc

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   unix.WaitStatus
		want uint32
	}{
		{"exit 0", unix.WaitStatus(0), 0},
		{"exit 3", unix.WaitStatus(3 << 8), 3},
		{"exit 255", unix.WaitStatus(255 << 8), 255},
		{"SIGKILL", unix.WaitStatus(unix.SIGKILL), 137},
		{"SIGTERM", unix.WaitStatus(unix.SIGTERM), 143},
		{"SIGKILL with core dump", unix.WaitStatus(unix.SIGKILL) | 0x80, 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExitCode(tc.ws); got != tc.want {
				t.Errorf("ExitCode(%#x) = %d, want %d", uint32(tc.ws), got, tc.want)
			}
		})
	}
}
