#!/usr/bin/env bash
# The main job: start the built containerd with the runsc handler on
# private directories, run a pod with crictl, print its output, tear down.
#   HANDLER=runc|runsc (default runsc)   KEEP=1 leaves containerd running
set -euo pipefail
cd "$(dirname "$0")/.."
HANDLER=${HANDLER:-runsc}
[[ $(id -u) == 0 ]] || { echo "make demo needs root" >&2; exit 1; }

dir=$(mktemp -d /tmp/shimless-demo.XXXX)
sock=$dir/c.sock
crictl() { bin/crictl --config "$dir/crictl.yaml" "$@"; }
cleanup() {
	set +e
	if [[ -S $sock ]]; then
		for p in $(crictl pods -q 2>/dev/null); do crictl stopp "$p" >/dev/null; crictl rmp "$p" >/dev/null; done
	fi
	[[ -n ${ctrd:-} ]] && kill "$ctrd" 2>/dev/null && wait "$ctrd" 2>/dev/null
	ip link del shldemo0 2>/dev/null
	grep -o " $dir[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$dir"
}
if [[ -z ${KEEP:-} ]]; then trap cleanup EXIT; fi

go run -modfile=_output/go.mod ./integration/cmd/devconfig -dir "$dir" -runsc bin/runsc
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n' "$sock" "$sock" >"$dir/crictl.yaml"
PATH=$PWD/bin:$PATH bin/containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
ctrd=$!
for _ in $(seq 100); do crictl info >/dev/null 2>&1 && break; sleep 0.2; done
crictl info >/dev/null || { tail -30 "$dir/containerd.log"; exit 1; }
bin/ctr --address "$sock" -n k8s.io images import _output/images.tar >/dev/null
echo "== containerd $(bin/containerd --version | awk '{print $3}') on $sock (handler $HANDLER)"

cat >"$dir/pod.json" <<JSON
{"metadata": {"name": "demo", "namespace": "default", "uid": "demo-uid"},
 "hostname": "demo", "log_directory": "$dir/pods/demo", "linux": {}}
JSON
cat >"$dir/ctr.json" <<JSON
{"metadata": {"name": "hello"}, "image": {"image": "shimless.test/busybox:latest"},
 "command": ["sh", "-c", "echo hello from \$(uname -sr) on \$(hostname); cat /proc/self/cgroup | head -1"],
 "log_path": "hello.log", "linux": {}}
JSON
start=$(date +%s%N)
pod=$(crictl runp --runtime "$HANDLER" "$dir/pod.json")
echo "== pod $pod ready in $((($(date +%s%N) - start) / 1000000)) ms"
ctr=$(crictl create "$pod" "$dir/ctr.json" "$dir/pod.json")
crictl start "$ctr" >/dev/null
for _ in $(seq 100); do [[ $(crictl inspect -o go-template --template '{{.status.state}}' "$ctr") == CONTAINER_EXITED ]] && break; sleep 0.1; done
echo "== output of container hello:"
crictl logs "$ctr"
crictl stopp "$pod" >/dev/null && crictl rmp "$pod" >/dev/null
echo "== pod stopped and removed"
if [[ -n ${KEEP:-} ]]; then echo "containerd left running: pid $ctrd, socket $sock"; fi
