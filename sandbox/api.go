package sandbox

import (
	"context"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

var _ sandbox.Controller = (*Controller)(nil)

var _ = proto.Marshal

func (c *Controller) Create(ctx context.Context, info sandbox.Sandbox, opts ...sandbox.CreateOpt) error {
	return errdefs.ErrNotImplemented
}
func (c *Controller) Start(ctx context.Context, id string) (sandbox.ControllerInstance, error) {
	return sandbox.ControllerInstance{}, errdefs.ErrNotImplemented
}
func (c *Controller) Platform(ctx context.Context, id string) (imagespec.Platform, error) {
	return platforms.DefaultSpec(), nil
}
func (c *Controller) Stop(ctx context.Context, id string, opts ...sandbox.StopOpt) error {
	return errdefs.ErrNotImplemented
}
func (c *Controller) Wait(ctx context.Context, id string) (sandbox.ExitStatus, error) {
	return sandbox.ExitStatus{}, errdefs.ErrNotImplemented
}
func (c *Controller) Status(ctx context.Context, id string, verbose bool) (sandbox.ControllerStatus, error) {
	return sandbox.ControllerStatus{}, errdefs.ErrNotFound
}
func (c *Controller) Shutdown(ctx context.Context, id string) error { return nil }
func (c *Controller) Metrics(ctx context.Context, id string) (*types.Metric, error) {
	return nil, errdefs.ErrNotImplemented
}
func (c *Controller) Update(ctx context.Context, id string, info sandbox.Sandbox, fields ...string) error {
	return errdefs.ErrNotImplemented
}
