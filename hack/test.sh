#!/usr/bin/env bash
# The test command: installs what the tests need, builds, runs unit tests,
# then the integration tests against the built containerd, real runsc and
# real CNI (root only). Ends with "N passed, N failed" over both.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) != 0 ]]; then
	echo "make test needs root (integration tests start containerd, runsc and CNI)" >&2
	exit 1
fi
./hack/deps.sh
make binaries images bin/crictl bin/runc bin/nerdctl

log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
{ make unit UNIT_FLAGS=-v && make fuzz FUZZTIME=20s && make integration; } 2>&1 | tee "$log" || rc=$?
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
grep -E '^chaos' "$log" || true
echo "${passed} passed, ${failed} failed"
if ((rc == 0 && failed > 0)); then rc=1; fi
exit "$rc"
