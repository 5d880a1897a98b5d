#!/usr/bin/env bash
# Installs what building and testing shimless needs on a Debian machine, as
# root: only Debian packages (the Go toolchain must already be there; Go
# modules come from the module proxy during the build).
set -euo pipefail

need=()
for pkg in containernetworking-plugins busybox-static iproute2 iptables patch jq; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
	echo "installing Debian packages: ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# critest's MaskedPaths spec needs a shell that executes /bin/ls: Debian's
# busybox-static is built with the standalone shell (applets run
# in-process), its dynamic busybox is not. The conformance images' /bin/sh
# is that one: unpacked from its package, not installed (the two packages
# conflict).
bbdyn="$(cd "$(dirname "$0")/.." && pwd)/_output/deps/busybox-dynamic"
if [[ ! -x $bbdyn/bin/busybox ]]; then
	tmp=$(mktemp -d)
	chmod 0755 "$tmp"
	if ! (cd "$tmp" && apt-get download busybox >/dev/null 2>&1); then
		apt-get update -qq
		(cd "$tmp" && apt-get download busybox >/dev/null 2>&1)
	fi
	mkdir -p "$bbdyn"
	dpkg-deb -x "$tmp"/busybox_*.deb "$bbdyn"
	rm -rf "$tmp"
	echo "unpacked Debian's dynamic busybox into $bbdyn"
fi

go_version=$(go env GOVERSION 2>/dev/null || true)
if [[ -z "$go_version" ]]; then
	echo "go is not installed: install Go >= 1.26.6 (containerd v2.4.2 needs it)" >&2
	exit 1
fi
