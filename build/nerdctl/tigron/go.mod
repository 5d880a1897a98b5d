// Stand-in for github.com/containerd/nerdctl/mod/tigron, nerdctl's test
// framework. nerdctl's go.mod replaces it with a directory of its own
// repository (./mod/tigron) that is not part of the published module, and
// the module proxy serves no version of it. The nerdctl binary links it only
// through pkg/testutil's tig.T parameter type; this module provides that.
module github.com/containerd/nerdctl/mod/tigron

go 1.23
