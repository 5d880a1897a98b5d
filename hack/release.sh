#!/usr/bin/env bash
# Writes the release bundle, laid out like containerd's own release tarballs:
#   OUT/shimless-VERSION-linux-ARCH.tar.gz (+ .sha256sum next to it)
# holding usr/local/bin/*, etc/systemd/system/containerd.service,
# etc/containerd/config.toml, examples/runtimeclass.yaml and a sha256sum
# file of everything in the bundle. Reproducible: sorted entries, root:root,
# fixed mtime (SOURCE_DATE_EPOCH, default: the last commit), gzip -n.
#
#   hack/release.sh VERSION [ARCH]   (env: BIN_DIR=bin OUT_DIR=_output)
# It packs what is in BIN_DIR: build it first (`make release` does).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
version=${1:?usage: hack/release.sh VERSION [ARCH]}
arch=${2:-$(go env GOARCH)}
bin_dir=$(cd "${BIN_DIR:-$repo/bin}" && pwd)
out_dir=${OUT_DIR:-$repo/_output}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}
name=shimless-$version-linux-$arch
tarball=$out_dir/$name.tar.gz

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -d "$stage/usr/local/bin" "$stage/etc/systemd/system" "$stage/etc/containerd" "$stage/examples"
for b in containerd ctr containerd-shim-runc-v2 runsc shimless-pause; do
	[[ -x $bin_dir/$b ]] || { echo "$bin_dir/$b missing: run make binaries" >&2; exit 1; }
	install -m 0755 "$bin_dir/$b" "$stage/usr/local/bin/$b"
done
install -m 0644 "$repo/release/containerd.service" "$stage/etc/systemd/system/containerd.service"
install -m 0644 "$repo/release/config.toml" "$stage/etc/containerd/config.toml"
install -m 0644 "$repo/release/runtimeclass.yaml" "$stage/examples/runtimeclass.yaml"
# `sha256sum -c sha256sum` in the unpacked root checks the bundle.
(cd "$stage" && find . -type f ! -name sha256sum | LC_ALL=C sort | sed 's|^\./||' |
	xargs sha256sum >sha256sum && chmod 0644 sha256sum)

mkdir -p "$out_dir"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
	--format=gnu -cf - usr etc examples sha256sum | gzip -n >"$tarball.tmp"
mv "$tarball.tmp" "$tarball"
(cd "$out_dir" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256sum")
echo "$tarball"
