#!/usr/bin/env bash
# The test command: installs what the tests need, builds, runs unit tests,
# then the integration tests against the built containerd, real runsc and
# real CNI (root only), then a conformance subset (hack/conformance.sh:
# critest on runsc and runsc-shim-style, containerd's CRI integration
# suite on runsc; CONFORMANCE=0 leaves it out). Ends with "N passed,
# N failed" over all of them: every conformance test that passed counts as
# passed, every unexpected conformance failure as failed (expected failures
# are listed, not counted; a newly passing one is announced).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) != 0 ]]; then
	echo "make test needs root (integration tests start containerd, runsc and CNI)" >&2
	exit 1
fi
./hack/deps.sh
make binaries images bin/crictl bin/runc bin/nerdctl
if [[ ${CONFORMANCE:-1} != 0 ]]; then
	make bin/critest bin/cri-integration.test
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
{ make unit UNIT_FLAGS=-v && make fuzz FUZZTIME=20s && make integration; } 2>&1 | tee "$log" || rc=$?
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
grep -E '^chaos' "$log" || true

# The conformance subset: specs and tests that are fast and cover the pod,
# container, exec, log, stats, stop and volume paths. Its reports stay in
# _output/conformance-ci; the runner's stdout (summaries, not "--- PASS"
# lines) goes to the log, the counts come from its totals file.
if [[ ${CONFORMANCE:-1} != 0 ]]; then
	ci_out=$PWD/_output/conformance-ci
	critest_focus='PodSandbox runtime should support basic operations on PodSandbox|Container runtime should support basic operations on container|Container runtime should support log|runtime should support (attach|exec with tty)|should support (DNS config|set hostname)|NamespaceOption runtime should support (ContainerPID|PodPID)|RunAsUser|ReadOnlyRootfs|MaskedPaths'
	cri_tests='TestContainerEvents TestContainerLogWithoutTailingNewLine TestLongContainerLog TestContainerRestart TestFailedContainerRestart TestContainerStats TestContainerListStats TestDefaultContainerStopSignal TestSharedPidMultiProcessContainerStop TestUpdateContainerResources_StatusUpdated TestContainerSymlinkVolumes TestContainerLifecycleWithoutImageRef TestDuplicateName TestRunPodSandboxWithoutMetadata TestCreateContainerWithoutMetadata TestRuntimeHandler TestTruncIndex TestVolumeCopyUp TestVolumeOwnership TestImageFSInfo'
	t0=$(date +%s)
	crc=0
	{
		OUT=$ci_out/critest HANDLERS="runsc runsc-shim-style" SUITES=critest FOCUS=$critest_focus ./hack/conformance.sh || crc=$?
		OUT=$ci_out/cri-suite HANDLERS=runsc SUITES=cri-suite CRI_TESTS=$cri_tests ./hack/conformance.sh || crc=$?
		exit $crc
	} 2>&1 | tee -a "$log" || crc=$?
	echo "conformance subset: $(($(date +%s) - t0)) s"
	cpassed=$(cat "$ci_out"/*/totals 2>/dev/null | awk '{s += $3} END {print s + 0}')
	cfailed=$(cat "$ci_out"/*/totals 2>/dev/null | awk '{s += $4} END {print s + 0}')
	echo "conformance subset: ${cpassed} passed, ${cfailed} failed unexpectedly"
	passed=$((passed + cpassed))
	failed=$((failed + cfailed))
	if ((crc != 0)); then
		rc=1
		# A suite that could not run has no unexpected failure to count.
		((cfailed > 0)) || failed=$((failed + 1))
	fi
fi
echo "${passed} passed, ${failed} failed"
if ((rc == 0 && failed > 0)); then rc=1; fi
exit "$rc"
