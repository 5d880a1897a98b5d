#!/usr/bin/env bash
# Conformance: run critest (cri-tools v1.34.0) and containerd v2.4.2's own
# CRI integration suite (bin/cri-integration.test, hack/cri-suite.sh lists
# its tests) against bin/containerd on private directories, offline, once
# per runtime handler, and compare the failures with
# conformance/critest-expected-failures.txt and
# conformance/cri-suite-expected-failures.txt.
#
#   HANDLERS="runc runsc runsc-shim-style"  handlers to test (default: these)
#   SUITES="critest cri-suite"              suites to run (default: both)
#   FOCUS=regexp SKIP=regexp                extra ginkgo focus / skip (critest)
#   OVERHEAD=bytes                          the runsc plugin's sandbox_memory_overhead
#                                           (default: the plugin's, 32 MiB)
#   CRI_TESTS="TestA TestB"                 CRI suite tests (default: all
#                                           applicable, hack/cri-suite.sh)
#   STOCK=1                                 then the same suites against stock
#                                           containerd v2.4.2 + gVisor's
#                                           containerd-shim-runsc-v1 (bin/stock),
#                                           handler runsc, reported as
#                                           "stock-runsc" (a reference: its
#                                           failures do not fail the run)
#   STOCK=only                              only the stock run
#   OUT=dir                                 keep reports and logs here
#                                           (default: _output/conformance)
#   KEEP=1                                  keep the temp dir (containerd logs)
#   BRIDGE=shlconf0 SUBNET=10.254.91.0/24   the pods' CNI bridge (two runs at once
#                                           need two)
#
# Images come from integration/cmd/conformance-registry on 127.0.0.1,
# reached through hosts.toml mirrors for registry.k8s.io and gcr.io.
# Exit status: non-zero on a failure that is not in the expected list (or
# when a suite could not run); a newly passing expected failure is announced.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "make conformance needs root" >&2; exit 1; }

HANDLERS=${HANDLERS:-runc runsc runsc-shim-style}
SUITES=${SUITES:-critest cri-suite}
STOCK=${STOCK:-}
OUT=${OUT:-$PWD/_output/conformance}
EXPECTED_DIR=$PWD/conformance
BRIDGE=${BRIDGE:-shlconf0}
SUBNET=${SUBNET:-10.254.91.0/24}

# Specs that cannot run here at all, whatever the runtime (see
# docs/conformance.md, "Not run"). Each is skipped by name and listed in
# the summary, never silently.
NOT_RUN=(
	# The digest-pinned upstream image cannot be rebuilt offline: its
	# manifest digest is fixed by the upstream bytes.
	'public image with digest should be pulled and removed'
)
not_run_re=$(IFS='|'; echo "${NOT_RUN[*]}" | sed 's/[][().*+?^$]/\\&/g')
skip_re="\\[Benchmark\\]|$not_run_re${SKIP:+|$SKIP}"

dir=$(mktemp -d /tmp/shimless-conf.XXXX)
# mktemp makes it 0700: the mapped root of a user-namespaced runc pod
# could not reach its rootfs below it.
chmod 0755 "$dir"
mkdir -p "$OUT"
rm -f "$OUT/totals"
pids=()
sock=
# Remove what a crashed or interrupted critest left behind, before
# containerd stops.
remove_pods() {
	[[ -n $sock && -S $sock ]] || return 0
	for p in $(bin/crictl -r "unix://$sock" pods -q 2>/dev/null); do
		bin/crictl -r "unix://$sock" stopp "$p" >/dev/null 2>&1
		bin/crictl -r "unix://$sock" rmp -f "$p" >/dev/null 2>&1
	done
}
cleanup() {
	set +e
	remove_pods
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	ip link del "$BRIDGE" 2>/dev/null
	grep -o " $dir[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if [[ -n ${KEEP:-} ]]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

# portmap rules of pods whose teardown never ran (containerd killed
# mid-suite) survive in the nat table and shadow new host-port DNATs
# ("no route to host" on 127.0.0.1:12000): drop the ones of our network.
iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -F 'dnat name:' | grep -F "$BRIDGE" | while read -r rule; do
	chain=${rule##* -j }
	eval "iptables -t nat ${rule/-A /-D }" && iptables -t nat -F "$chain" && iptables -t nat -X "$chain" &&
		echo "removed stale portmap rules of $BRIDGE ($chain)"
done || true

GOMOD=(-modfile="$PWD/_output/go.mod")
go build "${GOMOD[@]}" -o "$dir/bin/conformance-registry" ./integration/cmd/conformance-registry
CGO_ENABLED=0 go build "${GOMOD[@]}" -o "$dir/bin/nnp" ./integration/cmd/nnp
CGO_ENABLED=0 go build "${GOMOD[@]}" -o "$dir/bin/webserver" ./integration/cmd/webserver

shell_flag=()
if [[ -x _output/deps/busybox-dynamic/bin/busybox ]]; then
	shell_flag=(-shell _output/deps/busybox-dynamic/bin/busybox)
fi
"$dir/bin/conformance-registry" -nnp "$dir/bin/nnp" -webserver "$dir/bin/webserver" -pause bin/shimless-pause "${shell_flag[@]}" -addr-file "$dir/registry.addr" >"$OUT/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s $dir/registry.addr ]] && break; sleep 0.1; done
reg=$(cat "$dir/registry.addr")
echo "== offline registry on http://$reg"


# shellcheck source=hack/cri-suite.sh
source hack/cri-suite.sh
cri_list=${CRI_TESTS:-${CRI_APPLICABLE[*]}}
cri_run_re="^($(tr ' ' '|' <<<"$cri_list"))\$"
cri_skip_re="^($(IFS='|'; echo "${!CRI_NOT_RUN[*]}"))\$"
# The suite's images, from the same registry (cri-suite.test is mirrored
# to it below). BusyBoxByDigest cannot be served (upstream digest).
cat >"$dir/cri-images.toml" <<TOML
Alpine = "cri-suite.test/alpine:3.14.0"
BusyBox = "cri-suite.test/busybox:1.36"
BusyBoxByDigest = "cri-suite.test/busybox@sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c"
Pause = "cri-suite.test/pause:3.10.2"
ResourceConsumer = "cri-suite.test/resource-consumer:1.10"
VolumeCopyUp = "cri-suite.test/volume-copy-up:2.2"
VolumeOwnership = "cri-suite.test/volume-ownership:2.1"
ArgsEscaped = "cri-suite.test/args-escaped-test-image-ns:1.0"
Nginx = "cri-suite.test/nginx:1.27.0"
TOML

# write_config KIND DIR: KIND "ours" is the integration harness's config
# (integration/cmd/devconfig, every handler); "stock" is stock containerd
# with gVisor's shim as its docs configure it: handler runsc, runtime_type
# io.containerd.runsc.v1 (containerd-shim-runsc-v1 from bin/stock on
# PATH), options ConfigPath to a runsc.toml whose binary_name is bin/runsc
# and whose runsc_config matches what ours runs with (net-raw, oci-seccomp).
write_config() {
	local kind=$1 d=$2
	go run "${GOMOD[@]}" ./integration/cmd/devconfig -dir "$d" -runsc bin/runsc -bridge "$BRIDGE" -subnet "$SUBNET"
	if [[ $kind == stock ]]; then
		cat >"$d/runsc.toml" <<TOML
binary_name = "$PWD/bin/runsc"
root = "$d/runsc-root"
[runsc_config]
  net-raw = "true"
  oci-seccomp = "true"
TOML
		cat >"$d/config.toml" <<TOML
version = 3
root = "$d/root"
state = "$d/state"

[grpc]
  address = "$d/c.sock"

[debug]
  level = "debug"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "shimless.test/pause:latest"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runsc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
      runtime_type = "io.containerd.runsc.v1"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = "$d/runsc.toml"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$d/net.d"
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
TOML
	fi
	# Pod networking as kubelet sets it up: bridge plus portmap (host ports)
	# and loopback. No masquerade and no route out.
	cat >"$d/net.d/10-shimless.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$BRIDGE",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "$d/ipam", "ranges": [[{"subnet": "$SUBNET"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
	for host in registry.k8s.io gcr.io cri-suite.test; do
		mkdir -p "$d/certs.d/$host"
		printf 'server = "https://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n' \
			"$host" "$reg" >"$d/certs.d/$host/hosts.toml"
	done
	printf "\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"%s/certs.d\"\n" "$d" >>"$d/config.toml"
	# An exec whose output never reaches EOF would hang ExecSync, and with
	# it the whole suite (critest calls ExecSync without a deadline): make
	# CRI give up draining after 60 s so such a spec fails instead.
	sed -i "s|^  restrict_oom_score_adj = true|&\n  drain_exec_sync_io_timeout = \"60s\"|" "$d/config.toml"
	grep -q drain_exec_sync_io_timeout "$d/config.toml"
	if [[ -n ${OVERHEAD:-} ]]; then
		sed -i "s|^\[plugins.'io.containerd.shimless.v1.runsc'\]|&\n  sandbox_memory_overhead = $OVERHEAD|" "$d/config.toml"
	fi
}

# compare SUITE LABEL TSV STRICT: per-suite summary line, one line per
# failure, checked against conformance/SUITE-expected-failures.txt
# ("label|test name" lines, label * = every label). STRICT=1: an unexpected
# failure makes the run fail.
compare() {
	local suite=$1 label=$2 tsv=$3 strict=$4 t=$5 expected passed failed skipped unexpected=0
	passed=$(awk -F'\t' '$1=="passed"' "$tsv" | wc -l)
	failed=$(awk -F'\t' '$1!="passed" && $1!="skipped" && $1!="pending"' "$tsv" | wc -l)
	skipped=$(awk -F'\t' '$1=="skipped" || $1=="pending"' "$tsv" | wc -l)
	local line="$suite $label: passed $passed, failed $failed, skipped $skipped ($t s)"
	echo "== $line"
	expected=$(grep -v '^\s*#' "$EXPECTED_DIR/$suite-expected-failures.txt" | grep -v '^\s*$' |
		awk -F'|' -v h="$label" '$1==h || $1=="*" {sub(/^[^|]*\|/, ""); print}' || true)
	while IFS=$'\t' read -r state name msg; do
		[[ $state == passed || $state == skipped || $state == pending ]] && continue
		if grep -qxF -- "$name" <<<"$expected"; then
			echo "   expected failure: $name"
		elif [[ $strict == 1 ]]; then
			echo "   FAIL (unexpected): $name"
			echo "       $msg"
			unexpected=$((unexpected + 1))
			status=1
		else
			echo "   FAIL: $name"
			echo "       $msg"
		fi
	done <"$tsv"
	while IFS= read -r name; do
		[[ -z $name ]] && continue
		if grep -qP "^passed\t\Q$name\E\t" "$tsv"; then
			echo "   NEWLY PASSING (remove from $EXPECTED_DIR/$suite-expected-failures.txt): $label|$name"
		fi
	done <<<"$expected"
	awk -F'\t' '$1=="skipped" && $3 != "" {print "   skipped: " $2 ": " $3}' "$tsv"
	((unexpected > 0)) && line+=", unexpected $unexpected"
	summary+=("$line")
	# Totals for hack/test.sh: passed, unexpected failures.
	echo "$suite $label $passed $unexpected" >>"$OUT/totals"
}

run_critest() {
	local label=$1 h=$2 strict=$3 rc=0 t0 t1
	echo "== critest, $label"
	t0=$(date +%s)
	bin/critest --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" \
		--runtime-handler "$h" --ginkgo.no-color --ginkgo.timeout 2h \
		--ginkgo.skip "$skip_re" ${FOCUS:+--ginkgo.focus "$FOCUS"} \
		--ginkgo.json-report "$OUT/critest-$label.json" >"$OUT/critest-$label.log" 2>&1 || rc=$?
	t1=$(date +%s)
	remove_pods || true
	if [[ ! -s $OUT/critest-$label.json ]]; then
		echo "critest for $label produced no report (exit $rc); tail of $OUT/critest-$label.log:" >&2
		tail -20 "$OUT/critest-$label.log" >&2
		status=1
		return
	fi
	# One line per spec: STATE<TAB>full spec name<TAB>first line of failure.
	jq -r '.[].SpecReports[] | select(.LeafNodeType == "It") |
		[.State, ((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" ")),
		 ((.Failure.Message // "") | split("\n") | map(select(length > 0)) | .[0:2] | join(" ") | .[0:300])] | @tsv' \
		"$OUT/critest-$label.json" >"$OUT/critest-$label.tsv"
	compare critest "$label" "$OUT/critest-$label.tsv" "$strict" $((t1 - t0))
}

# The CRI suite: one go test binary run per handler, -test.v output
# parsed into the same STATE<TAB>name<TAB>message lines (top-level tests;
# a failed subtest is named in the message).
run_cri_suite() {
	local label=$1 h=$2 bin=$3 strict=$4 rc=0 t0 t1
	echo "== CRI integration suite, $label"
	t0=$(date +%s)
	bin/cri-integration.test -test.v -test.count 1 -test.timeout 60m \
		-test.run "$cri_run_re" -test.skip "$cri_skip_re" \
		-cri-endpoint "unix://$sock" -runtime-handler "$h" -containerd-bin "$bin" \
		-image-list "$dir/cri-images.toml" >"$OUT/cri-suite-$label.log" 2>&1 || rc=$?
	t1=$(date +%s)
	remove_pods || true
	awk '
		function top(n) { sub(/\/.*/, "", n); return n }
		/^=== RUN/ { cur = top($3); more = 0; next }
		# The first assertion of a test: its "Error:" line, plus the next
		# line when that only says "Not equal:" and the like.
		more && cur != "" { m = $0; sub(/^[ \t]+/, "", m); msg[cur] = msg[cur] " " m; more = 0 }
		/^[ \t]+Error:/ && cur != "" && !(cur in msg) { m = $0; sub(/^[ \t]+Error:[ \t]*/, "", m); msg[cur] = m; more = (m == "" || m ~ /:[ \t]*$/) }
		/^[ \t]+--- FAIL: / { n = top($3); if (!(n in sub1)) sub1[n] = $3 }
		/^[ \t]+[a-z_0-9]+\.go:[0-9]+: / && cur != "" { m = $0; sub(/^[ \t]+/, "", m); last[cur] = m }
		/^--- (PASS|FAIL|SKIP): / {
			names[++count] = $3
			state[$3] = ($2 == "PASS:") ? "passed" : ($2 == "FAIL:") ? "failed" : "skipped"
		}
		# Subtest verdicts follow their parent'"'"'s: print at the end.
		END {
			for (i = 1; i <= count; i++) {
				n = names[i]; st = state[n]; m = ""
				if (st == "failed") {
					m = (n in msg) ? msg[n] : last[n]
					if (n in sub1) m = sub1[n] ": " m
				}
				if (st == "skipped") m = last[n]
				printf "%s\t%s\t%s\n", st, n, substr(m, 1, 300)
			}
		}' "$OUT/cri-suite-$label.log" >"$OUT/cri-suite-$label.tsv"
	# A test binary that died (panic, timeout) leaves tests without a verdict.
	if ((rc != 0)) && ! grep -q '^FAIL$' "$OUT/cri-suite-$label.log"; then
		echo "CRI suite for $label did not finish (exit $rc); tail of $OUT/cri-suite-$label.log:" >&2
		tail -20 "$OUT/cri-suite-$label.log" >&2
		status=1
	fi
	compare cri-suite "$label" "$OUT/cri-suite-$label.tsv" "$strict" $((t1 - t0))
}

# run_handler KIND HANDLER: start containerd (ours or stock) with the
# handler's config, run the suites, stop it.
run_handler() {
	local kind=$1 h=$2 label=$2 ctrd_bin=$PWD/bin/containerd path=$PWD/bin:$PATH strict=1
	if [[ $kind == stock ]]; then
		label=stock-$h ctrd_bin=$stock_bin/containerd path=$stock_bin:$PWD/bin:$PATH strict=0
	fi
	local d=$dir/$label
	mkdir -p "$d"
	write_config "$kind" "$d"
	sock=$d/c.sock
	PATH=$path "$ctrd_bin" --config "$d/config.toml" >"$OUT/containerd-$label.log" 2>&1 &
	ctrd=$!
	pids+=($ctrd)
	for _ in $(seq 150); do bin/crictl -r "unix://$sock" info >/dev/null 2>&1 && break; sleep 0.2; done
	bin/ctr --address "$sock" -n k8s.io images import _output/images.tar >/dev/null
	for s in $SUITES; do
		case $s in
		critest) run_critest "$label" "$h" "$strict" ;;
		cri-suite) PATH=$path run_cri_suite "$label" "$h" "$ctrd_bin" "$strict" ;;
		*) echo "unknown suite $s" >&2; status=1 ;;
		esac
	done
	remove_pods || true
	kill "$ctrd" 2>/dev/null && wait "$ctrd" 2>/dev/null || true
	# Shims outlive containerd by design (stock); stop what is left of ours.
	for f in "$d"/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
		[[ -s $f ]] && kill "$(cat "$f")" 2>/dev/null
	done
	ip link del "$BRIDGE" 2>/dev/null || true
}

# gVisor's shim sets its own oom_score_adj to -999 and fails the pod when
# it cannot ("failed to set OOM Score on shim: ... permission denied"),
# whatever restrict_oom_score_adj says: on a host whose root lacks
# CAP_SYS_RESOURCE (this one) no stock pod would start. There, build the
# pinned shim with that one call made best-effort (a copy of the gVisor
# module with that line of pkg/shim/v1/manager.go changed, through a
# replace in a copy of build/gvisor-shim; nothing else changed) for the
# stock run.
stock_bin=$PWD/bin/stock
capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
if [[ -n $STOCK ]] && (((16#$capeff >> 24 & 1) == 0)); then
	s=$dir/stock-shim
	gv=$(go list -C build/gvisor-shim -m -f '{{.Dir}}' gvisor.dev/gvisor)
	mkdir -p "$s/mod"
	cp -r "$gv" "$s/gvisor"
	chmod -R u+w "$s/gvisor"
	sed -i 's|return shim.BootstrapParams{}, fmt.Errorf("failed to set OOM Score on shim: %w", err)|_ = err /* shimless conformance: no CAP_SYS_RESOURCE */|' \
		"$s/gvisor/pkg/shim/v1/manager.go"
	grep -q 'shimless conformance' "$s/gvisor/pkg/shim/v1/manager.go"
	cp build/gvisor-shim/go.mod build/gvisor-shim/go.sum "$s/mod/"
	go mod edit -modfile "$s/mod/go.mod" -replace "gvisor.dev/gvisor=$s/gvisor"
	cp bin/stock/containerd "$s/containerd"
	echo "== stock: no CAP_SYS_RESOURCE, building gVisor's shim with its oom_score_adj best-effort ($s)"
	CGO_ENABLED=0 go build -C "$s/mod" -trimpath -o "$s/containerd-shim-runsc-v1" gvisor.dev/gvisor/shim
	stock_bin=$s
fi

start_all=$(date +%s)
status=0
summary=()
if [[ $STOCK != only ]]; then
	for h in $HANDLERS; do run_handler ours "$h"; done
fi
if [[ -n $STOCK ]]; then
	run_handler stock runsc
fi
echo
echo "== summary ($(($(date +%s) - start_all)) s; reports in $OUT)"
for l in "${summary[@]}"; do echo "$l"; done
if [[ " $SUITES " == *" critest "* ]]; then
	for n in "${NOT_RUN[@]}"; do echo "critest, not run on any handler (offline, see docs/conformance.md): $n"; done
fi
if [[ " $SUITES " == *" cri-suite "* ]]; then
	for n in "${!CRI_NOT_RUN[@]}"; do echo "CRI suite, not run: $n: ${CRI_NOT_RUN[$n]}"; done
	echo "CRI suite, not applicable (restart containerd, shim or containerd internals; ${#CRI_NOT_APPLICABLE[@]} tests): see hack/cri-suite.sh"
fi
exit $status
