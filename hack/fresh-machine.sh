#!/usr/bin/env bash
# Checks the README's two commands on a fresh Debian machine, as root: a
# debootstrap'd Debian bookworm (minbase plus git, make, gcc, libc6-dev and
# ca-certificates: no busybox-static, no CNI plugins, no iproute2) with this
# host's Go toolchain copied in, a clean clone of this repository, then
# `make demo` and `make test` with that tree as the root of a private mount
# namespace. Logs go to <dir>/demo.log and
# <dir>/test.log.
#
#   hack/fresh-machine.sh [dir]        (default /tmp/shimless-fresh)
#
# Set FRESH_ROOT to reuse an existing debootstrap'd tree.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/tmp/shimless-fresh}
root=${FRESH_ROOT:-$dir/root}
mkdir -p "$dir"

if [[ ! -x "$root/bin/bash" ]]; then
	debootstrap --variant=minbase --include=git,make,gcc,libc6-dev,ca-certificates,apt \
		bookworm "$root" http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1
fi
for pkg in busybox-static containernetworking-plugins; do
	if chroot "$root" dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		echo "fresh-machine: $pkg is already in $root; not a fresh machine" >&2
		exit 1
	fi
done

goroot=$(go env GOROOT)
rm -rf "$root/usr/local/go" "$root/src/shimless"
mkdir -p "$root/usr/local" "$root/src"
cp -a "$goroot" "$root/usr/local/go"
git clone -q "$repo" "$root/src/shimless"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The machine's network trust (a site CA a proxy presents) is the host's.
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

mounted=()
cleanup() {
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -R -l "${mounted[i]}" 2>/dev/null || true
	done
}
trap cleanup EXIT
for m in proc sys dev; do
	mkdir -p "$root/$m"
	mount --rbind "/$m" "$root/$m"
	mount --make-rslave "$root/$m"
	mounted+=("$root/$m")
done
mount -t tmpfs tmpfs "$root/tmp"
mounted+=("$root/tmp")
mkdir -p "$root/run"
mount -t tmpfs tmpfs "$root/run"
mounted+=("$root/run")

# The fresh tree becomes the root of a private mount namespace by
# pivot_root, not chroot: runsc makes user namespaces for its sandboxes,
# and the kernel refuses those to a chrooted process.
run() {
	unshare --mount --propagation private --fork /bin/bash -c '
		set -e
		mount --rbind "$0" "$0"
		cd "$0"
		mkdir -p .oldroot
		pivot_root . .oldroot
		cd /
		umount -l /.oldroot
		exec /usr/bin/env -i HOME=/root PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			GOFLAGS=-buildvcs=false TERM=dumb /bin/bash -c "cd /src/shimless && $1"
	' "$root" "$1"
}
rc=0
echo "fresh-machine: make demo (log: $dir/demo.log)"
run "make demo" >"$dir/demo.log" 2>&1 || rc=$?
echo "fresh-machine: make demo exited $rc"; tail -5 "$dir/demo.log"
[[ $rc == 0 ]] || exit "$rc"
echo "fresh-machine: make test (log: $dir/test.log)"
run "make test" >"$dir/test.log" 2>&1 || rc=$?
echo "fresh-machine: make test exited $rc"; tail -3 "$dir/test.log"
exit "$rc"
