package telemetry

import (
	"context"
	"errors"

	"github.com/containerd/errdefs"
)

// Reasons of failures: a small fixed set, so the failures metric keeps a
// bounded number of series.
const (
	ReasonNotFound           = "not_found"
	ReasonAlreadyExists      = "already_exists"
	ReasonInvalidArgument    = "invalid_argument"
	ReasonFailedPrecondition = "failed_precondition"
	ReasonUnavailable        = "unavailable"
	ReasonDeadlineExceeded   = "deadline_exceeded"
	ReasonCanceled           = "canceled"
	ReasonNotImplemented     = "not_implemented"
	ReasonOther              = "other"
)

// Reason maps an error to its failure reason by errdefs kind (context
// errors included); anything unclassified is "other".
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded) || errdefs.IsDeadlineExceeded(err):
		return ReasonDeadlineExceeded
	case errors.Is(err, context.Canceled) || errdefs.IsCanceled(err):
		return ReasonCanceled
	case errdefs.IsNotFound(err):
		return ReasonNotFound
	case errdefs.IsAlreadyExists(err):
		return ReasonAlreadyExists
	case errdefs.IsInvalidArgument(err):
		return ReasonInvalidArgument
	case errdefs.IsFailedPrecondition(err):
		return ReasonFailedPrecondition
	case errdefs.IsUnavailable(err):
		return ReasonUnavailable
	case errdefs.IsNotImplemented(err):
		return ReasonNotImplemented
	default:
		return ReasonOther
	}
}
