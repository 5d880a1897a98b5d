#!/usr/bin/env bash
# Prepares the build of gVisor's containerd-shim-runsc-v1 (make stock) and
# prints the -modfile to build it with. One change to gVisor's shim, in its
# `start`: it lowers its daemon's oom_score_adj to -999 and fails to start
# when that is refused; lowering needs CAP_SYS_RESOURCE, which root lacks
# on some hosts (this one, and containers without it). Here a refused write
# (EACCES) is ignored, as containerd's own pkg/sys.SetOOMScore ignores it
# for unprivileged callers; with the capability nothing changes.
#
# Go does not allow overlays of module-cache files, so the pinned gVisor
# module is mirrored as a tree of symlinks into the module cache
# (_output/gvisor-shim/gvisor; non-Go files copied) with that one file a
# patched copy, and
# build/gvisor-shim/go.mod is copied with a replace pointing at it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(go list -C build/gvisor-shim -m -f '{{.Dir}}' gvisor.dev/gvisor)
out=$PWD/_output/gvisor-shim
rm -rf "$out"
mkdir -p "$out"
cp -rs "$dir" "$out/gvisor"
chmod -R u+w "$out/gvisor"
# go:embed refuses symlinks: the few non-Go files are copied.
find "$out/gvisor" -type l ! -name '*.go' -exec sh -c 'cp --remove-destination "$(readlink "$1")" "$1"' _ {} \;
f=pkg/shim/v1/manager.go
old='if err := sys.SetOOMScore(cmd.Process.Pid, oomScoreMax); err != nil {'
new='if err := sys.SetOOMScore(cmd.Process.Pid, oomScoreMax); err != nil \&\& !os.IsPermission(err) {'
grep -qF "$old" "$dir/$f" || { echo "gvisor-shim-overlay: $dir/$f changed; update $0" >&2; exit 1; }
rm "$out/gvisor/$f"
sed "s|$old|$new|" "$dir/$f" >"$out/gvisor/$f"
grep -qF 'os.IsPermission(err) {' "$out/gvisor/$f"
cp build/gvisor-shim/go.mod "$out/go.mod"
cp build/gvisor-shim/go.sum "$out/go.sum"
printf '\nreplace gvisor.dev/gvisor => %s/gvisor\n' "$out" >>"$out/go.mod"
echo "$out/go.mod"
