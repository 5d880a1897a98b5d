#!/usr/bin/env bash
# The test command: installs what the tests need, builds, runs unit tests,
# then the integration tests against the built containerd, real runsc and
# real CNI (root only).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) != 0 ]]; then
	echo "make test needs root (integration tests start containerd, runsc and CNI)" >&2
	exit 1
fi
./hack/deps.sh
make binaries images bin/crictl
make unit
make integration
