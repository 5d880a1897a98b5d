// Command containerd is the shimless distribution of containerd: the stock
// plugin set plus the in-process runsc sandbox controller and task runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd/command"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"

	"github.com/shimless/shimless/plugins"
)

func main() {
	plugins.InstallTaskRouter()
	if err := command.App().Run(context.Background(), os.Args); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}
