#!/usr/bin/env bash
# Builds the container images and checks them for real with podman: the server
# image answers readiness and an inference, runs as a non-root user, takes its
# options from the environment, and drains on SIGTERM (an in-flight request
# completes, exit 0); the aiload image runs. Ends with "N passed, N failed".
#
# No Docker daemon runs here and no registry is reachable, so podman runs with
# runc and cgroupfs on the host network, and the debian:12-slim base is made
# with debootstrap (cached in $AISERVE_BASE_CACHE) and imported under that name.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
finish() {
    podman rm -f -t 0 aiserve-ct >/dev/null 2>&1
    [ -n "${curlpid:-}" ] && kill "$curlpid" 2>/dev/null
    rm -rf "$work"
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
work=$(mktemp -d)
trap finish EXIT

command -v podman >/dev/null || { scripts/install-deps.sh || exit 1; }

# podman's defaults assume systemd and per-user ulimits, neither usable here.
cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = []
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$work/containers.conf"

base=debian:12-slim
if ! podman image exists "$base"; then
    cache=${AISERVE_BASE_CACHE:-/var/cache/aiserve}
    root="$cache/rootfs-bookworm"
    if [ ! -x "$root/bin/sh" ]; then
        echo "container-test: debootstrap bookworm into $root"
        mkdir -p "$cache" && rm -rf "$root.tmp"
        debootstrap --variant=minbase bookworm "$root.tmp" http://deb.debian.org/debian \
            >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; bad "debootstrap"; exit; }
        rm -rf "$root.tmp"/var/cache/apt/archives/*.deb "$root.tmp"/var/lib/apt/lists/*
        mv "$root.tmp" "$root"
    fi
    tar -C "$root" -c . | podman import - "$base" >/dev/null || { bad "import base"; exit; }
fi
ok "base image $base"

# --format docker keeps HEALTHCHECK (the OCI format has no field for it).
build() {
    podman build --pull=never --network host --format docker "$@" . >"$work/build.log" 2>&1 ||
        { tail -30 "$work/build.log"; return 1; }
}
t0=$(date +%s)
if build -t aiserve:test; then ok "server image built in $(($(date +%s) - t0)) s"; else bad "server image build"; exit; fi
if build --target aiload -t aiload:test; then ok "aiload image built"; else bad "aiload image build"; fi
echo "image size: $(podman image inspect aiserve:test --format '{{.Size}}' | awk '{printf "%.0f MiB", $1/1048576}')"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
# Options from the environment, as an orchestrator sets them.
# The health check runs on demand below (no systemd timers here).
aport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
podman run -d --name aiserve-ct --health-interval disable -e AISERVE_HTTP="127.0.0.1:$port" \
    -e UWSGI_PROCESSES=2 -e AISERVE_ADMIN="127.0.0.1:$aport" \
    -e HEALTHCHECK_URL="http://127.0.0.1:$aport/health/ready" aiserve:test >/dev/null ||
    { bad "podman run"; exit; }

ready=0
for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$aport/health/ready" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.5
done
if [ $ready = 1 ]; then ok "ready on $url (AISERVE_HTTP)"; else podman logs aiserve-ct | tail -20; bad "readiness"; exit; fi

body=$(curl -fsS "$url/")
[ "$body" = "Hello, World!" ] && ok "GET / ran MobileNetV2" || bad "GET / answered '$body'"

req='{"inputs":[{"name":"image","shape":[1,1,8,8],"datatype":"FP32","data":['$(printf '0,%.0s' $(seq 1 63))'0]}]}'
out=$(curl -fsS -H 'Content-Type: application/json' -d "$req" "$url/v2/models/digits/infer")
grep -q '"outputs"' <<<"$out" && ok "v2 inference on digits" || bad "v2 inference: $out"

uid=$(podman exec aiserve-ct id -u)
[ "$uid" = 10001 ] && ok "runs as uid 10001" || bad "uid is $uid"
# Every process of the server (master and workers), not only exec's shell.
users=$(podman top aiserve-ct user | tail -n +2 | sort -u | tr '\n' ' ')
[ "$users" = "10001 " ] || [ "$users" = "aiserve " ] && ok "all processes non-root ($users)" || bad "process users: $users"
nworkers=$(podman top aiserve-ct args | grep -c "aiserve")
[ "$nworkers" -ge 3 ] && ok "master + 2 workers (UWSGI_PROCESSES)" || bad "processes: $nworkers"

if podman healthcheck run aiserve-ct >/dev/null 2>&1; then ok "HEALTHCHECK passes"; else bad "HEALTHCHECK"; fi

# Graceful stop: a request in flight when SIGTERM arrives still completes.
curl -sS -o "$work/delay.out" -w '%{http_code}' "$url/delay/2" >"$work/delay.code" 2>&1 &
curlpid=$!
sleep 0.5
podman stop -t 20 aiserve-ct >/dev/null
wait "$curlpid"; curlpid=
code=$(cat "$work/delay.code")
[ "$code" = 200 ] && ok "in-flight request completed across SIGTERM" || bad "in-flight request got '$code'"
rc=$(podman inspect aiserve-ct --format '{{.State.ExitCode}}')
[ "$rc" = 0 ] && ok "exit code 0 after SIGTERM" || bad "exit code $rc"
# The log is read whole before grep: under pipefail, grep -q leaving at the
# first match would turn podman's write of the rest into a SIGPIPE failure.
podman logs aiserve-ct >"$work/server.log" 2>&1
if grep -q "graceful shutdown" "$work/server.log"; then ok "drain logged"; else
    tail -20 "$work/server.log"
    bad "no drain in the log"
fi

v=$(podman run --rm aiload:test --version 2>&1)
grep -q aiload <<<"$v" && ok "aiload image: $v" || bad "aiload image: $v"

# The Debian package on a clean Debian 12: apt resolves its dependencies, the
# programs run, and the installed server answers (aiload, from the package, checks).
make --no-print-directory deb >"$work/deb.log" 2>&1 || { tail -20 "$work/deb.log"; bad "make deb"; exit; }
deb=$(sed -n 's/^deb: //p' "$work/deb.log")
dport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if podman run --rm -v "$PWD/$deb:/pkg/aiserve.deb:ro" "$base" sh -ec "
    apt-get update -qq && apt-get install -y -qq /pkg/aiserve.deb >/dev/null
    aiserve --version && aiinfer info /usr/share/aiserve/models/digits.onnx >/dev/null
    aiserve --http=127.0.0.1:$dport --model=digits=/usr/share/aiserve/models/digits.onnx &
    pid=\$!
    for i in \$(seq 1 100); do aiload http://127.0.0.1:$dport/v2/models/digits/ready -c 1 -d 1s \
        --only-summary >/dev/null 2>&1 && break; sleep 0.3; done
    aiload http://127.0.0.1:$dport/v2/models/digits/ready -c 1 -d 1s --only-summary
    kill \$pid; wait \$pid" >"$work/debrun.log" 2>&1; then
    ok "deb installs and serves on a clean Debian 12"
else
    tail -20 "$work/debrun.log"
    bad "deb on a clean Debian 12"
fi
