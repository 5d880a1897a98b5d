package sandbox

import (
	"context"
	"fmt"
	"net"

	"github.com/containerd/errdefs"

	"github.com/shimless/shimless/sandbox/runsc"
)

// DialPort connects to a TCP port inside one of our sandboxes (a pod's, or
// a gVisor-shim style pod whose root the task runtime runs): the pod's
// network stack lives in the Sentry, so CRI's dial inside the network
// namespace cannot reach it (patch 0002 makes CRI ask this first). handled
// is false for a sandbox that is not ours.
func (c *Controller) DialPort(ctx context.Context, sandboxID string, port int32) (_ net.Conn, handled bool, _ error) {
	var r runsc.Runner
	if s, err := c.get(sandboxID); err == nil {
		rec := s.snapshot()
		if rec.State != StateRunning {
			return nil, true, fmt.Errorf("sandbox %s is %s: %w", sandboxID, rec.State, errdefs.ErrFailedPrecondition)
		}
		r = c.client(rec)
	} else {
		c.mu.Lock()
		h := c.roots[sandboxID]
		c.mu.Unlock()
		if h == nil {
			return nil, false, nil
		}
		if h.Gone() {
			return nil, true, fmt.Errorf("sandbox %s has exited: %w", sandboxID, errdefs.ErrFailedPrecondition)
		}
		r = h.Runsc()
	}
	if port <= 0 || port > 65535 {
		return nil, true, fmt.Errorf("port %d: %w", port, errdefs.ErrInvalidArgument)
	}
	conn, err := r.PortForward(ctx, sandboxID, sandboxID, uint16(port))
	return conn, true, err
}
