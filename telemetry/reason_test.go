package telemetry

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
)

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("sandbox x: %w", errdefs.ErrNotFound), ReasonNotFound},
		{fmt.Errorf("runsc sandbox x: %w", errdefs.ErrAlreadyExists), ReasonAlreadyExists},
		{fmt.Errorf("bad options: %w", errdefs.ErrInvalidArgument), ReasonInvalidArgument},
		{fmt.Errorf("sandbox x is stopped: %w", errdefs.ErrFailedPrecondition), ReasonFailedPrecondition},
		{fmt.Errorf("did not exit: %w", errdefs.ErrUnavailable), ReasonUnavailable},
		{fmt.Errorf("runsc create: %w", context.DeadlineExceeded), ReasonDeadlineExceeded},
		{fmt.Errorf("wait: %w", context.Canceled), ReasonCanceled},
		{errdefs.ErrNotImplemented, ReasonNotImplemented},
		{errors.New("runsc create x: exit status 1"), ReasonOther},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
