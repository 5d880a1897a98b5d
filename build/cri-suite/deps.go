// Package crisuite only pins the containerd module whose integration
// package hack/cri-suite.sh builds with `go test -c`.
package crisuite

import _ "github.com/containerd/containerd/v2/client"
