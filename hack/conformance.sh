#!/usr/bin/env bash
# Conformance: run critest (cri-tools v1.34.0) against bin/containerd on
# private directories, offline, once per runtime handler, and compare the
# failures with conformance/critest-expected-failures.txt.
#
#   HANDLERS="runc runsc runsc-shim-style"  handlers to test (default: these)
#   FOCUS=regexp SKIP=regexp                extra ginkgo focus / skip
#   OUT=dir                                 keep reports and logs here
#                                           (default: _output/conformance)
#   KEEP=1                                  keep the temp dir (containerd logs)
#
# Images come from integration/cmd/conformance-registry on 127.0.0.1,
# reached through hosts.toml mirrors for registry.k8s.io and gcr.io.
# Exit status: non-zero on a failure that is not in the expected list (or
# when a suite could not run); a newly passing expected failure is announced.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "make conformance needs root" >&2; exit 1; }

HANDLERS=${HANDLERS:-runc runsc runsc-shim-style}
OUT=${OUT:-$PWD/_output/conformance}
EXPECTED=$PWD/conformance/critest-expected-failures.txt
BRIDGE=shlconf0
SUBNET=10.254.91.0/24

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

"$dir/bin/conformance-registry" -nnp "$dir/bin/nnp" -webserver "$dir/bin/webserver" -addr-file "$dir/registry.addr" >"$OUT/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s $dir/registry.addr ]] && break; sleep 0.1; done
reg=$(cat "$dir/registry.addr")
echo "== offline registry on http://$reg"

start_all=$(date +%s)
status=0
summary=()
for h in $HANDLERS; do
	d=$dir/$h
	mkdir -p "$d"
	go run "${GOMOD[@]}" ./integration/cmd/devconfig -dir "$d" -runsc bin/runsc -bridge "$BRIDGE" -subnet "$SUBNET"
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
	for host in registry.k8s.io gcr.io; do
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

	sock=$d/c.sock
	PATH=$PWD/bin:$PATH bin/containerd --config "$d/config.toml" >"$OUT/containerd-$h.log" 2>&1 &
	ctrd=$!
	pids+=($ctrd)
	for _ in $(seq 150); do bin/crictl -r "unix://$sock" info >/dev/null 2>&1 && break; sleep 0.2; done
	bin/ctr --address "$sock" -n k8s.io images import _output/images.tar >/dev/null

	echo "== critest, handler $h"
	t0=$(date +%s)
	rc=0
	bin/critest --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" \
		--runtime-handler "$h" --ginkgo.no-color --ginkgo.timeout 2h \
		--ginkgo.skip "$skip_re" ${FOCUS:+--ginkgo.focus "$FOCUS"} \
		--ginkgo.json-report "$OUT/critest-$h.json" >"$OUT/critest-$h.log" 2>&1 || rc=$?
	t1=$(date +%s)
	remove_pods || true
	kill "$ctrd" 2>/dev/null && wait "$ctrd" 2>/dev/null || true
	ip link del "$BRIDGE" 2>/dev/null || true

	if [[ ! -s $OUT/critest-$h.json ]]; then
		echo "critest for $h produced no report (exit $rc); tail of $OUT/critest-$h.log:" >&2
		tail -20 "$OUT/critest-$h.log" >&2
		status=1
		continue
	fi
	# One line per spec: STATE<TAB>full spec name<TAB>first line of failure.
	jq -r '.[].SpecReports[] | select(.LeafNodeType == "It") |
		[.State, ((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" ")),
		 ((.Failure.Message // "") | split("\n") | map(select(length > 0)) | .[0:2] | join(" ") | .[0:300])] | @tsv' \
		"$OUT/critest-$h.json" >"$OUT/critest-$h.tsv"
	passed=$(awk -F'\t' '$1=="passed"' "$OUT/critest-$h.tsv" | wc -l)
	failed=$(awk -F'\t' '$1!="passed" && $1!="skipped" && $1!="pending"' "$OUT/critest-$h.tsv" | wc -l)
	skipped=$(awk -F'\t' '$1=="skipped" || $1=="pending"' "$OUT/critest-$h.tsv" | wc -l)
	line="critest $h: passed $passed, failed $failed, skipped $skipped ($((t1 - t0)) s)"
	summary+=("$line")
	echo "== $line"
	# Expected failures: "handler|spec name" lines; handler * = every handler.
	expected=$(grep -v '^\s*#' "$EXPECTED" | grep -v '^\s*$' |
		awk -F'|' -v h="$h" '$1==h || $1=="*" {sub(/^[^|]*\|/, ""); print}' || true)
	while IFS=$'\t' read -r state name msg; do
		[[ $state == passed || $state == skipped || $state == pending ]] && continue
		if grep -qxF -- "$name" <<<"$expected"; then
			echo "   expected failure: $name"
		else
			echo "   FAIL (unexpected): $name"
			echo "       $msg"
			status=1
		fi
	done <"$OUT/critest-$h.tsv"
	while IFS= read -r name; do
		[[ -z $name ]] && continue
		if grep -qP "^passed\t\Q$name\E\t" "$OUT/critest-$h.tsv"; then
			echo "   NEWLY PASSING (remove from $EXPECTED): $h|$name"
		fi
	done <<<"$expected"
done
echo
echo "== summary ($(($(date +%s) - start_all)) s; reports in $OUT)"
for l in "${summary[@]}"; do echo "$l"; done
for n in "${NOT_RUN[@]}"; do echo "not run on any handler (offline, see docs/conformance.md): $n"; done
exit $status
