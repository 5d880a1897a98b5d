package sandbox

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"abc123", true},
		{strings.Repeat("a", 64), true},
		{"my-pod_1.x", true},
		{"", false},
		{"rootfs", false},
		{"runsc", false},
		{"tasks", false},
		{"sandboxes", false},
		{"../x", false},
		{"..", false},
		{".", false},
		{"a/b", false},
		{"/abs", false},
		{"-x", false},
		{"x-", false},
		{"a b", false},
		{"a\nb", false},
		{strings.Repeat("a", 77), false},
	} {
		err := ValidateID(tc.id)
		if tc.ok && err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", tc.id, err)
		}
		if !tc.ok {
			if err == nil {
				t.Errorf("ValidateID(%q) = nil, want an error", tc.id)
			} else if !errdefs.IsInvalidArgument(err) {
				t.Errorf("ValidateID(%q) = %v, want InvalidArgument", tc.id, err)
			}
		}
	}
}

func TestValidatePodAndPrivateIDs(t *testing.T) {
	if err := validatePodID("shimless-foo"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("validatePodID(shimless-foo) = %v, want InvalidArgument", err)
	}
	if err := validatePodID("foo"); err != nil {
		t.Errorf("validatePodID(foo) = %v", err)
	}
	long := PrivateSandboxPrefix + strings.Repeat("a", 76)
	if err := validatePrivateID(long); err != nil {
		t.Errorf("a private id of a 76-character container id: %v", err)
	}
	if err := validateKnownID(long); err != nil {
		t.Errorf("validateKnownID(private) = %v", err)
	}
	for _, bad := range []string{"foo", PrivateSandboxPrefix, PrivateSandboxPrefix + "../x", PrivateSandboxPrefix + "rootfs"} {
		if err := validatePrivateID(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("validatePrivateID(%q) = %v, want InvalidArgument", bad, err)
		}
	}
}
