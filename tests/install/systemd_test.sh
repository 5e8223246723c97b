#!/usr/bin/env bash
# The installed box under a real systemd: Debian 12's systemd booted as PID 1
# in a podman container (no network: its own loopback only), install.sh run
# in it with the built binary, then the unit checked as systemd runs it and
# driven from the cloud simulator (inside the same container) over the real
# tunnel: compose.snapshot with the system's podman-compose and podman
# (nested containers on an internal network), containers.list/restart,
# units.status/restart, journal.tail and env.set, each answered under the
# unit's sandbox. Then the watchdog, the sandbox rating, reinstall,
# uninstall and purge. Run as root (CI does).
#   tests/install/systemd_test.sh SOURCE_DIR SECBOX_BINARY CLOUDSIM_BINARY
set -euo pipefail
src=$(cd "$1" && pwd)
binary=$2
cloudsim=$3
[[ $(id -u) -eq 0 ]] || { echo "run as root: it boots a container with systemd" >&2; exit 1; }
for tool in podman mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (scripts/install-deps --test)" >&2; exit 1; }
done

work=$(mktemp -d)
name="secbox-systemd-$$"
failures=0
cleanup() {
  exec 3>&- 4<&- 2>/dev/null || true
  # SECBOX_TEST_KEEP=1 leaves the container to look into (podman rm -f it).
  if [[ "${SECBOX_TEST_KEEP:-0}" == 1 ]]; then
    echo "# kept: podman exec -it $name bash (CONTAINERS_CONF=$CONTAINERS_CONF)"
    cp "$CONTAINERS_CONF" /tmp/secbox-test-containers.conf 2>/dev/null || true
    return 0
  fi
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
check() { # description command...
  local what=$1
  shift
  if "$@"; then echo "ok - $what"; else echo "FAIL - $what"; failures=$((failures + 1)); fi
}
# This kernel's hybrid cgroups and podman's default limits (STACK.md): the
# same settings outside and, for the nested podman, inside.
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF="$work/containers.conf"

started=$(date +%s)
image=$("$src/tests/install/systemd-image")
echo "# image $image ready after $(($(date +%s) - started)) s"

# What goes in: the binaries under test, the installer and the built guard app.
mkdir -p "$work/in"
cp "$binary" "$work/in/secbox"
cp "$cloudsim" "$work/in/secbox-cloudsim"
cp "$src/install.sh" "$work/in/install.sh"
# The cloud's release key (the simulator's, which signs releases) and the
# releases it serves, made by secbox-release from the binary under test (its
# debug sections off: under 256 MiB unpacked): 0.1.0 for the one-line
# install, 0.2.0 for an update, 0.3.0 a broken build (a script that exits),
# 0.4.0 for `secbox update` on the box.
openssl genpkey -algorithm ed25519 -out "$work/in/update-key.pem" 2>/dev/null
openssl pkey -in "$work/in/update-key.pem" -pubout -out "$work/in/update.pub"
objcopy --strip-debug "$binary" "$work/secbox-stripped"
"$src/scripts/build-web" "$work/in/web" >/dev/null
release_tool=$(dirname "$cloudsim")/../release/secbox-release
# (A broken build still carries the daemon's version slot, for the stamp.)
printf '#!/bin/sh\necho "this build is broken" >&2\nexit 1\n@(#)secbox-%s' "slot:" >"$work/broken"
head -c 65 /dev/zero >>"$work/broken"
for r in 0.1.0 0.2.0 0.3.0 0.4.0; do
  daemon="$work/secbox-stripped"
  [[ $r == 0.3.0 ]] && daemon="$work/broken"
  "$release_tool" --daemon "$daemon" --web "$work/in/web" --version "$r" --counter 1 --key "$work/in/update-key.pem" \
    --out "$work/in/release-$r" --level 3 >/dev/null
done
chmod -R a+rX "$work/in"
echo "# the ASan build's release bundle: $(stat -c %s "$work/in/release-0.1.0/secbox.tar.zst") bytes"
# --privileged: the nested podman needs it; systemd still applies the unit's
# sandbox (checked below, not assumed).
podman run -d --name "$name" --privileged --systemd=always --network none \
  -v "$work/in:/opt/secbox-test:ro" "$image" /sbin/init >/dev/null
box() { podman exec "$name" "$@"; }
state=""
for _ in $(seq 120); do
  state=$(box systemctl is-system-running 2>/dev/null || true)
  [[ "$state" == running || "$state" == degraded ]] && break
  sleep 0.5
done
if [[ "$state" == degraded ]]; then box systemctl --failed --no-pager --plain --no-legend || true; fi
check "systemd booted as PID 1 ($state)" test "$(box cat /proc/1/comm)" = systemd
[[ "$state" == running || "$state" == degraded ]] || { box systemctl --failed --no-pager || true; exit 1; }

# The nested podman: the settings above, vfs storage; an image of busybox.
box mkdir -p /etc/containers
# The nested runc cannot mount a cgroup namespace on this kernel's hybrid
# hierarchy: each inner container gets the outer one's (read-only) instead.
sed 's#^\[engine\]#volumes = ["/sys/fs/cgroup:/sys/fs/cgroup:ro"]\n[engine]#' "$work/containers.conf" >"$work/containers-inner.conf"
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' >"$work/storage.conf"
podman cp "$work/containers-inner.conf" "$name:/etc/containers/containers.conf"
podman cp "$work/storage.conf" "$name:/etc/containers/storage.conf"
# shellcheck disable=SC2016 # expanded by the container's shell
box sh -c 'mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ &&
  for l in sh sleep env cat true touch; do ln -s busybox /tmp/bb/bin/$l; done &&
  tar -C /tmp/bb -cf /opt/sbt-busybox.tar .'
# As on an ordinary Debian install (the host's is 0600): rootless podman's
# slirp4netns opens it as the runtime's user.
box chmod 0666 /dev/net/tun
# podman.service failed at boot, before the settings above; socket activation
# starts it again.
box systemctl reset-failed
# A unit the cloud may restart, and one it may not.
box sh -c 'printf "[Service]\nExecStart=/bin/sleep infinity\n" >/etc/systemd/system/secbox-test-allowed.service &&
  printf "[Service]\nExecStart=/bin/sleep infinity\n" >/etc/systemd/system/secbox-test-other.service &&
  systemctl daemon-reload && systemctl start secbox-test-allowed.service secbox-test-other.service'

# The binary under test is built with ASan: LeakSanitizer needs ptrace at
# exit, which the unit's seccomp filter refuses (the only addition to the unit).
box sh -c 'mkdir -p /etc/systemd/system/secbox.service.d &&
  printf "[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n" >/etc/systemd/system/secbox.service.d/sanitizer.conf'
# The update trial shortened to fit CI (the unit's defaults are 120 s and 300 s).
box sh -c 'printf "[Service]\nEnvironment=SECBOX_UPDATE_TRIAL_S=10 SECBOX_UPDATE_DEADLINE_S=60\n" >/etc/systemd/system/secbox.service.d/trial.conf'

# The cloud simulator, inside the box: it serves install.sh (with its URL and
# update key filled in) and release 0.1.0, and later pairs and drives the box.
bootstrap="bt_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
mkfifo "$work/sim.in" "$work/sim.out"
box mkdir -p -m 0700 /root/sim
box install -m 0600 /opt/secbox-test/update-key.pem /root/sim/update-key.pem
podman exec -i "$name" /opt/secbox-test/secbox-cloudsim --dir /root/sim --port 8766 \
  --device dev_systemd --bootstrap "$bootstrap" --install-script /opt/secbox-test/install.sh \
  --release /opt/secbox-test/release-0.1.0 <"$work/sim.in" >"$work/sim.out" 2>"$work/cloudsim.log" &
exec 3>"$work/sim.in" 4<"$work/sim.out"
read -r -t 30 ready <&4 || { cat "$work/cloudsim.log"; exit 1; }
echo "# cloud simulator: $ready"
# The one-line install, as a booth box gets it: curl | sh from the cloud, no
# arguments. (A booth trusts the cloud's certificate through the system
# store; here curl is given the simulator's CA.)
one_line_install() {
  box sh -c 'curl -fsS --cacert /root/sim/ca.pem https://127.0.0.1:8766/install.sh | CURL_CA_BUNDLE=/root/sim/ca.pem sh'
}

# 1. The install.
t0=$(date +%s)
out=$(one_line_install 2>&1) || { echo "$out"; exit 1; }
echo "# install.sh (curl | sh) took $(($(date +%s) - t0)) s"
check "curl | sh checked the release's manifest" grep -q "signature checks out with the pinned update key" <<<"$out"
check "and its bundle" grep -q "the bundle is the manifest" <<<"$out"
check "it installed release 0.1.0 with its app and counter" \
  bash -c "podman exec $name test -f /usr/local/lib/secbox/versions/0.1.0/web/index.html &&
           podman exec $name grep -qx COUNTER=1 /usr/local/lib/secbox/update.ledger"
check "it pinned the cloud's key and the cloud" \
  bash -c "podman exec $name cmp -s /root/sim/update.pub /etc/secbox/update.pub && podman exec $name grep -qx https://127.0.0.1:8766 /etc/secbox/cloud"
# The containers' runtime: rootless podman as secbox-runtime, behind its
# socket. rt drives it as the daemon does; the test's image goes into that
# user's storage (its podman joins the service's namespaces, whose /tmp is
# private: the tar is elsewhere).
rt() { box env CONTAINER_HOST=unix:///run/secbox-runtime.sock podman "$@"; }
check "the runtime answers on its socket, rootless" test "$(rt info --format '{{.Host.Security.Rootless}}' 2>&1)" = true
# shellcheck disable=SC2016 # expanded by the container's shell
box runuser -u secbox-runtime -- env XDG_RUNTIME_DIR=/run/secbox-runtime HOME=/var/lib/secbox-runtime \
  sh -c 'podman import --change "CMD [\"/bin/sleep\",\"100000\"]" /opt/sbt-busybox.tar localhost/sbt-busybox:1 >/dev/null'
check "the test image is in the runtime's storage" rt image exists localhost/sbt-busybox:1
check "install says it installed" grep -q "SecBox is installed" <<<"$out"
check "secbox.service is active" box systemctl is-active --quiet secbox.service
check "through Type=notify" test "$(box systemctl show -p Type --value secbox.service)" = notify
check "only the box's database runs (no postgresql@15-main)" \
  bash -c "! podman exec $name systemctl is-active --quiet postgresql@15-main.service"
check "no cluster 15/main was made" bash -c "! podman exec $name test -d /etc/postgresql/15/main"

# The site's permissions: what this test drives, and the units it may restart.
box sh -c 'cat >/etc/secbox/control.json <<EOF
{"metrics":    {"allow": ["get"]},
 "containers": {"allow": ["list", "restart"]},
 "units":      {"allow": ["status", "restart"], "names": ["secbox-test-allowed.service"]},
 "journal":    {"allow": ["tail"], "names": ["secbox.service"]},
 "env":        {"allow": ["set", "unset"]},
 "jwt":        {"allow": ["rotate"]},
 "update":     {"allow": ["apply"]}}
EOF
chown root:secbox /etc/secbox/control.json && chmod 0640 /etc/secbox/control.json'
out=$(one_line_install 2>&1) || { echo "$out"; exit 1; }
check "the polkit rule names the allowed unit" \
  box grep -q '"secbox-test-allowed.service"' /etc/polkit-1/rules.d/50-secbox.rules
check "polkit lets secbox restart the allowed unit" \
  box runuser -u secbox -- systemctl restart secbox-test-allowed.service
check "polkit refuses secbox any other unit" \
  bash -c "! podman exec $name runuser -u secbox -- systemctl restart secbox-test-other.service 2>/dev/null"

# The polkit rule follows control.json: a unit the site adds is restartable
# within seconds (secbox-polkit.path), without running the installer again;
# one it takes away is not.
wait_rule() { # yes|no unit
  for _ in $(seq 40); do
    if box grep -q "\"$2\"" /etc/polkit-1/rules.d/50-secbox.rules 2>/dev/null; then
      [[ $1 == yes ]] && return 0
    else
      [[ $1 == no ]] && return 0
    fi
    sleep 0.25
  done
  return 1
}
write_units() { # the units the cloud may restart, as a JSON list
  podman exec -i "$name" sh -c 'cat >/etc/secbox/control.json' <<EOF
{"metrics":    {"allow": ["get"]},
 "containers": {"allow": ["list", "restart"]},
 "units":      {"allow": ["status", "restart"], "names": $1},
 "journal":    {"allow": ["tail"], "names": ["secbox.service"]},
 "env":        {"allow": ["set", "unset"]},
 "jwt":        {"allow": ["rotate"]},
 "update":     {"allow": ["apply"]}}
EOF
}
write_units '["secbox-test-allowed.service", "secbox-test-other.service"]'
check "a unit added to control.json reaches the polkit rule (secbox-polkit.path)" wait_rule yes secbox-test-other.service
check "polkit lets secbox restart the unit added later" \
  box runuser -u secbox -- systemctl restart secbox-test-other.service
write_units '["secbox-test-allowed.service"]'
check "a unit taken out of control.json leaves the rule" wait_rule no secbox-test-other.service
check "and polkit refuses it again" \
  bash -c "! podman exec $name runuser -u secbox -- systemctl restart secbox-test-other.service 2>/dev/null"
for u in secbox-recover.service secbox-recover-check.service secbox-polkit.service secbox-runtime.service; do
  e=$(box systemd-analyze security "$u" 2>/dev/null | sed -n "s/.*Overall exposure level for $u: \([0-9.]*\).*/\1/p")
  echo "# systemd-analyze security $u: exposure $e"
done

# 2. The sandbox, as systemd applied it to the running daemon.
pid=$(box systemctl show -p MainPID --value secbox.service)
status=$(box cat "/proc/$pid/status")
check "no capabilities" grep -qE '^CapEff:\s+0+$' <<<"$status"
check "no new privileges" grep -qE '^NoNewPrivs:\s+1$' <<<"$status"
check "seccomp filter on" grep -qE '^Seccomp:\s+2$' <<<"$status"
check "a write to /usr fails in the service's namespace" \
  bash -c "! podman exec $name nsenter -t $pid -m -- touch /usr/secbox-probe 2>/dev/null"
check "a write to /etc fails in the service's namespace" \
  bash -c "! podman exec $name nsenter -t $pid -m -- touch /etc/secbox-probe 2>/dev/null"
check "its state folder is writable there" box nsenter -t "$pid" -m -- touch /var/lib/secbox/probe
box rm -f /var/lib/secbox/probe
check "runs as secbox" test "$(box ps -o user= -p "$pid")" = secbox
exposure=$(box systemd-analyze security secbox.service 2>/dev/null |
  sed -n 's/.*Overall exposure level for secbox.service: \([0-9.]*\).*/\1/p')
echo "# systemd-analyze security secbox.service: exposure $exposure"
check "sandbox rated 2.5 or better under systemd ($exposure)" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.5) }'

# 3. Pairing with the cloud simulator, as the super-admin does it.
# The simulator's CA stands for a real cloud's; secbox.env is the daemon's own
# file in a sticky folder (protected_regular: root may not write it).
box sh -c 'install -m 0640 -o root -g secbox /root/sim/ca.pem /etc/secbox/cloud-ca.pem &&
  runuser -u secbox -- sh -c "umask 077 && echo CLOUD_CA_FILE=/etc/secbox/cloud-ca.pem >>/etc/secbox/secbox.env" &&
  systemctl restart secbox.service'
qr="{\"v\":1,\"cloudBaseUrl\":\"https://127.0.0.1:8766\",\"deviceId\":\"dev_systemd\",\"bootstrapToken\":\"$bootstrap\",\"gatewayUrl\":\"wss://127.0.0.1:8766/ws/device\",\"communityId\":\"com_local\"}"
# A QR for another cloud: refused by the installed box, nothing claimed.
foreign="${qr//https:\/\/127.0.0.1:8766/https://evil.example}"
foreign="${foreign//wss:\/\/127.0.0.1:8766/wss://evil.example}"
code=""
for _ in $(seq 100); do
  code=$(box curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$foreign" http://127.0.0.1:8080/pair 2>/dev/null || true)
  [[ "$code" != 000 ]] && break
  sleep 0.3
done
check "a QR for another cloud is refused ($code)" test "$code" = 400
check "the installed pin names the installer's --cloud" box grep -qx "https://127.0.0.1:8766" /etc/secbox/cloud
code=""
for _ in $(seq 100); do
  code=$(box curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$qr" http://127.0.0.1:8080/pair 2>/dev/null || true)
  [[ "$code" == 2* ]] && break
  sleep 0.3
done
check "the pairing form took the QR code ($code)" test "${code:0:1}" = 2
sim() { # line [seconds to read]: a command to the simulator, its one-line answer
  printf '%s\n' "$1" >&3
  local line=""
  read -r -t "${2:-90}" line <&4 || true
  printf '%s\n' "$line"
}
hello=$(sim "await-type hello 60" 70)
check "the box said hello over the tunnel" grep -q '"type":"hello"' <<<"$hello"
request() { # type payload [seconds]: sends a request, prints the box's reply
  local id
  id="t-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
  local sent
  sent=$(sim "{\"v\":1,\"type\":\"$1\",\"id\":\"$id\",\"ts\":\"2026-12-02T10:00:00Z\",\"payload\":$2}" 5)
  [[ "$sent" == sent ]] || { echo "{\"notSent\":\"$sent\"}"; return 0; }
  sim "await $id ${3:-30}" $((${3:-30} + 10))
}
field() { python3 -c 'import json,sys; m=json.loads(sys.stdin.read() or "{}"); print(eval(sys.argv[1], {}, {"m": m}))' "$1"; }

# 4. Cloud control under the sandbox.
reply=$(request env.set '{"key":"GREETING","value":"hola"}')
check "env.set GREETING: ack" test "$(field 'm.get("type")' <<<"$reply")" = ack
reply=$(request env.set '{"key":"LAN_WEB_DIR","value":"/var/lib/secbox"}')
check "env.set of the box's own setting, not named in control.json: forbidden" \
  test "$(field 'm.get("payload",{}).get("code")' <<<"$reply")" = forbidden
# shellcheck disable=SC2016 # ${GREETING} is the compose file's
yaml='services:\n  app:\n    image: localhost/sbt-busybox:1\n    stop_signal: SIGKILL\n    environment:\n      GREETING: ${GREETING}\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 1s\n      retries: 3\n  worker:\n    image: localhost/sbt-busybox:1\n    stop_signal: SIGKILL\nnetworks:\n  default:\n    internal: true\n'
t0=$(date +%s.%N)
# The apply, and a second one sent while it runs: that one is busy.
[[ $(sim "{\"v\":1,\"type\":\"compose.snapshot\",\"id\":\"t-apply\",\"ts\":\"2026-12-02T10:00:00Z\",\"payload\":{\"project\":\"booth\",\"yaml\":\"$yaml\"}}" 5) == sent ]]
second=$(request compose.snapshot "{\"project\":\"booth\",\"yaml\":\"$yaml\"}" 30)
reply=$(sim "await t-apply 240" 250)
t1=$(date +%s.%N)
check "a second compose.snapshot while one runs: busy" \
  test "$(field 'm.get("payload",{}).get("code")' <<<"$second")" = busy
echo "# compose.snapshot (two services, one health check) to its reply: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
echo "# $reply"
check "compose.snapshot: done" test "$(field 'm.get("payload",{}).get("phase")' <<<"$reply")" = "done"
check "the container runs the env file's value" \
  bash -c "podman exec $name env CONTAINER_HOST=unix:///run/secbox-runtime.sock podman exec booth_app_1 env | grep -qx GREETING=hola"
check "both services run" \
  bash -c "[[ \$(podman exec $name env CONTAINER_HOST=unix:///run/secbox-runtime.sock podman ps -q --filter label=com.docker.compose.project=booth | wc -l) -eq 2 ]]"
reply=$(request containers.list '{}')
check "containers.list names the project's containers" grep -q 'booth_worker_1' <<<"$reply"
before=$(rt inspect -f '{{.State.StartedAt}}' booth_worker_1 || true)
reply=$(request containers.restart '{"name":"booth_worker_1"}' 60)
check "containers.restart: ack" test "$(field 'm.get("type")' <<<"$reply")" = ack
check "the container was restarted" test "$(rt inspect -f '{{.State.StartedAt}}' booth_worker_1 || true)" != "$before"
# A hostile cloud: the corpus of tests/golden/compose-hostile sent over the
# tunnel to a project control.json allows nothing privileged. Each is
# refused at write; the project's containers stay the ones that ran, and
# none of them holds anything of the host.
ids_before=$(rt ps -aq --filter label=com.docker.compose.project=booth | sort)
refused=0
sent=0
for f in "$src"/tests/golden/compose-hostile/*.yaml; do
  head -n 1 "$f" | grep -q '^# refused:' || continue
  payload=$(python3 -c 'import json,sys; print(json.dumps({"project": "booth", "yaml": open(sys.argv[1]).read().replace("localhost/app:1", "localhost/sbt-busybox:1")}))' "$f")
  reply=$(request compose.snapshot "$payload" 30)
  sent=$((sent + 1))
  if [[ "$(field 'm.get("payload",{}).get("phase")' <<<"$reply")" == write ]]; then
    refused=$((refused + 1))
  else
    echo "# not refused at write: $(basename "$f"): $reply"
  fi
done
echo "# hostile compose files over the tunnel: $refused of $sent refused at write"
check "every hostile compose file is refused at write ($refused of $sent)" test "$refused" -eq "$sent" -a "$sent" -ge 40
check "the project's containers are the ones from before" \
  test "$(rt ps -aq --filter label=com.docker.compose.project=booth | sort)" = "$ids_before"
# shellcheck disable=SC2046 # one id a word
box_containers=$(rt inspect $(rt ps -aq))
reach=$(python3 -c '
import json, sys
found = []
for c in json.load(sys.stdin):
    hc = c.get("HostConfig", {})
    bad = [k for k in ("Privileged",) if hc.get(k)]
    bad += ["CapAdd"] if hc.get("CapAdd") else []
    bad += ["Devices"] if hc.get("Devices") else []
    bad += [k + "=" + hc.get(k, "") for k in ("NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode")
            if hc.get(k, "") == "host" or hc.get(k, "").startswith(("ns:", "container:"))]
    bad += ["bind " + m["Source"] for m in c.get("Mounts", []) if m.get("Type") == "bind"
            and not m.get("Source", "").startswith("/var/lib/secbox-compose/")]
    if bad:
        found.append(c.get("Name", "?") + ": " + " ".join(bad))
print("; ".join(found))' <<<"$box_containers")
check "no container of the box holds anything of the host (${reach:-nothing})" test -z "$reach"
reply=$(request units.status '{"name":"secbox-test-allowed.service"}')
check "units.status: active" test "$(field 'm.get("payload",{}).get("activeState")' <<<"$reply")" = active
before=$(box systemctl show -p MainPID --value secbox-test-allowed.service)
reply=$(request units.restart '{"name":"secbox-test-allowed.service"}' 60)
check "units.restart of the allowed unit: ack" test "$(field 'm.get("type")' <<<"$reply")" = ack
check "the unit was restarted" test "$(box systemctl show -p MainPID --value secbox-test-allowed.service)" != "$before"
reply=$(request units.restart '{"name":"secbox-test-other.service"}')
check "units.restart of another unit: forbidden" \
  test "$(field 'm.get("payload",{}).get("code")' <<<"$reply")" = forbidden
reply=$(request journal.tail '{"unit":"secbox.service","lines":50}')
check "journal.tail returns the daemon's lines" \
  test "$(field 'sum(1 for l in m.get("payload",{}).get("lines",[]) if "component" in l)' <<<"$reply")" -gt 0
check "journalctl -u secbox holds JSON lines with component" \
  bash -c "podman exec $name journalctl -u secbox.service -o cat --no-pager -n 200 |
    python3 -c 'import json,sys; n=sum(1 for l in sys.stdin if l.startswith(\"{\") and \"component\" in json.loads(l)); sys.exit(n == 0)'"

# 5. A wedged daemon: the watchdog kills it, systemd starts it again, and
# it comes back through the tunnel.
restarts=$(box systemctl show -p NRestarts --value secbox.service)
pid=$(box systemctl show -p MainPID --value secbox.service)
box kill -STOP "$pid"
t0=$(date +%s)
new=$pid
for _ in $(seq 120); do
  new=$(box systemctl show -p MainPID --value secbox.service)
  [[ "$new" != "$pid" && "$new" != 0 ]] && box systemctl is-active --quiet secbox.service && break
  sleep 0.5
done
echo "# SIGSTOP to restarted: $(($(date +%s) - t0)) s"
check "the watchdog restarted the wedged daemon" test "$new" != "$pid"
check "systemd counted the restart" test "$(box systemctl show -p NRestarts --value secbox.service)" -gt "$restarts"
check "the journal says watchdog" bash -c "podman exec $name journalctl -u secbox.service --no-pager | grep -qi watchdog"
back=""
for _ in $(seq 30); do
  back=$(request units.status '{"name":"secbox-test-allowed.service"}' 3)
  grep -q '"units.result"' <<<"$back" && break
  sleep 1
done
check "the restarted box answers over the tunnel" grep -q '"units.result"' <<<"$back"
grep -q '"units.result"' <<<"$back" || echo "# last answer: $back"

# 6. Reinstall, uninstall, purge.
out=$(one_line_install 2>&1)
check "a second install changes nothing" grep -q "nothing to change" <<<"$out"

# 7. Updates under systemd (cloud-protocol §7.6), each ending with the box
# saying hello with a working version and one update_result for the attempt.
sim "clear" 5 >/dev/null
results() { sim events 10 | python3 -c 'import json,sys; d=json.load(sys.stdin).get("byType",{}).get("update_result",{}); print(json.dumps(list(d.values())))'; }
await_result() { # phase: waits for an update_result with it
  local r=""
  for _ in $(seq 120); do
    r=$(results)
    grep -q "\"phase\": \"$1\"" <<<"$r" && break
    sleep 1
  done
  printf '%s\n' "$r"
}
version_of_hello() { field 'm.get("payload",{}).get("version")'; }
t0=$(date +%s.%N)
sent=$(sim "update /opt/secbox-test/release-0.2.0 t-upd-1" 10)
reply=$(sim "await t-upd-1 120" 130)
check "update.apply of a good version: ack" test "$(field 'm.get("type")' <<<"$reply")" = ack
hello=$(sim "await-type hello 120" 130)
t1=$(date +%s.%N)
check "the new version says hello under systemd (its built-in version)" test "$(version_of_hello <<<"$hello")" = 0.2.0
echo "# update.apply to the new version's hello under systemd: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
r=$(await_result "done")
check "its trial passed: update_result done" grep -q '"phase": "done"' <<<"$r"
check "one update_result for it" test "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$r")" = 1
check "0.2.0 is known-good" test "$(box readlink /usr/local/lib/secbox/known-good)" = versions/0.2.0
check "the unit runs 0.2.0's binary" \
  test "$(box readlink "/proc/$(box systemctl show -p MainPID --value secbox.service)/exe")" = /usr/local/lib/secbox/versions/0.2.0/secbox
check "secbox version says so" bash -c "podman exec $name /usr/local/bin/secbox version | grep -qx 'known-good: 0.2.0'"
check "the switch was not counted a failure" test "$(box systemctl show -p Result --value secbox.service)" = success

# A version that exits at once: rolled back by ExecStartPre, without its code.
sim "clear" 5 >/dev/null
podman cp "$work/broken" "$name:/root/broken"
box chmod 0755 /root/broken
sim "update /opt/secbox-test/release-0.3.0 t-upd-2" 10 >/dev/null
reply=$(sim "await t-upd-2 120" 130)
check "update.apply of a broken version: ack (it verifies)" test "$(field 'm.get("type")' <<<"$reply")" = ack
r=$(await_result rollback)
check "it was rolled back: update_result rollback" grep -q '"phase": "rollback"' <<<"$r"
check "0.2.0 is current again" test "$(box readlink /usr/local/lib/secbox/current)" = versions/0.2.0
check "the journal shows secbox-recover's rollback" \
  bash -c "podman exec $name journalctl -u secbox.service --no-pager | grep -q 'secbox-recover: rolled back'"
check "the box runs again" box systemctl is-active --quiet secbox.service
check "the rolled-back version is pruned and remembered" \
  bash -c "! podman exec $name test -e /usr/local/lib/secbox/versions/0.3.0 &&
           podman exec $name grep -qx 'ROLLED_BACK=0.3.0 1' /usr/local/lib/secbox/update.ledger"
sim "update /opt/secbox-test/release-0.3.0 t-upd-3" 10 >/dev/null
reply=$(sim "await t-upd-3 60" 70)
check "offered again: refused" test "$(field 'm.get("payload",{}).get("code")' <<<"$reply")" = forbidden
check "until a higher counter" grep -q "rolled back" <<<"$reply"

# secbox update on the box itself (no tunnel needed): same checks, same trial.
sim "clear" 5 >/dev/null
# The command runs the current version as secbox (root never executes the
# daemon's file): what it reads must be readable by secbox.
box sh -c 'cp -r /opt/secbox-test/release-0.4.0 /var/tmp/release-0.4.0 && cp -r /var/tmp/release-0.4.0 /var/tmp/release-bad &&
  cp /opt/secbox-test/release-0.2.0/manifest.sig /var/tmp/release-bad/manifest.sig && chmod -R a+rX /var/tmp/release-0.4.0 /var/tmp/release-bad'
out=$(box /usr/local/bin/secbox update --manifest /var/tmp/release-bad/manifest.json --signature /var/tmp/release-bad/manifest.sig \
  --bundle /var/tmp/release-bad/secbox.tar.zst 2>&1) && false
check "secbox update refuses a manifest the signature is not for" grep -q "refused: the signature" <<<"$out"
# The trial as short as the unit's (its drop-in does not reach this shell).
out=$(box env SECBOX_UPDATE_TRIAL_S=10 SECBOX_UPDATE_DEADLINE_S=60 /usr/local/bin/secbox update \
  --manifest /var/tmp/release-0.4.0/manifest.json --signature /var/tmp/release-0.4.0/manifest.sig \
  --bundle /var/tmp/release-0.4.0/secbox.tar.zst 2>&1) || true
check "secbox update verifies and switches" grep -q "Switched 0.2.0 -> 0.4.0" <<<"$out"
r=$(await_result "done")
check "the version it installed passed its trial" grep -q '"toVersion": "0.4.0"' <<<"$r"

# A crash loop outside any trial (here: current pointed by hand at a broken
# build): the start limit fails the unit, OnFailure= runs secbox-recover,
# which starts the known-good version again.
sim "clear" 5 >/dev/null
box sh -c 'mkdir -p /etc/systemd/system/secbox.service.d && printf "[Unit]\nStartLimitBurst=3\n[Service]\nRestartSec=1s\n" >/etc/systemd/system/secbox.service.d/fast-fail.conf &&
  mkdir -p /usr/local/lib/secbox/versions/0.6.0 && cp /root/broken /usr/local/lib/secbox/versions/0.6.0/secbox &&
  ln -sfn versions/0.6.0 /usr/local/lib/secbox/current && systemctl daemon-reload && systemctl restart secbox.service' || true
r=$(await_result rollback)
check "a crash-looping version is replaced by the known-good one (OnFailure)" grep -q "kept failing" <<<"$r"
check "current is known-good again" test "$(box readlink /usr/local/lib/secbox/current)" = versions/0.4.0
check "the unit runs again" box systemctl is-active --quiet secbox.service
box rm -f /etc/systemd/system/secbox.service.d/fast-fail.conf
box systemctl daemon-reload

# A hostile daemon against the container runtime: as secbox, the runtime's
# socket starts a privileged container with the host's / mounted, which
# cannot write /etc or read /etc/shadow (rootless: uid 0 in the container
# is secbox-runtime on the box); root's podman socket is not the secbox
# group's.
out=$(box runuser -u secbox -- env CONTAINER_HOST=unix:///run/secbox-runtime.sock podman run --rm --privileged \
  --network none -v /:/host localhost/sbt-busybox:1 sh -c 'echo container-ran; touch /host/etc/secbox-pwned; cat /host/etc/shadow' 2>&1) || true
check "hostile daemon: the runtime ran its privileged container" grep -q '^container-ran' <<<"$out"
check "hostile daemon: a privileged container of the runtime cannot write /etc" bash -c "! podman exec $name test -e /etc/secbox-pwned"
shadow_read=0
if grep -q '^root:' <<<"$out"; then shadow_read=1; fi
check "hostile daemon: nor read /etc/shadow" test "$shadow_read" -eq 0
check "hostile daemon: root's podman socket refuses secbox" \
  bash -c "! podman exec $name runuser -u secbox -- podman --url unix:///run/podman/podman.sock ps >/dev/null 2>&1"

# A hostile daemon: a shell as secbox plants links where root's helpers
# work, then each trigger of secbox-recover runs (the unit's pre-start, the
# 30 s check, OnFailure's service) and the installer runs again. Root's
# files behind the links stay root's and unchanged.
sim "clear" 5 >/dev/null
root_state() { box sh -c 'stat -c "%U:%G %a" /etc /etc/shadow /etc/passwd; sha256sum /etc/shadow /etc/passwd'; }
before_root=$(root_state)
# With the daemon stopped (it would rewrite its bundle on its next welcome),
# a known-good bundle that differs from secbox.env, so that the failed-unit
# recovery restores it and keeps the replaced file — through a link to
# /etc/shadow, had root done the copy.
box systemctl stop secbox.service
# shellcheck disable=SC2016 # expanded by the container's shell
check "hostile daemon: the links are planted (as secbox)" box runuser -u secbox -- sh -c 'set -e
  cd /usr/local/lib/secbox && rm -rf results && ln -s /etc results
  mkdir -p /var/lib/secbox/known-good && rm -f /var/lib/secbox/known-good/secbox.env.replaced
  ln -s /etc/shadow /var/lib/secbox/known-good/secbox.env.replaced
  grep -v "^GREETING=" /etc/secbox/secbox.env >/var/lib/secbox/known-good/secbox.env
  echo "GREETING=from-the-bundle" >>/var/lib/secbox/known-good/secbox.env
  printf "PHASE=trial\nATTEMPT=att-hostile\nFROM=0.4.0\nTO=0.4.0\nDEADLINE=1\nSTARTS=5\n" >update.state'
box systemctl start secbox-recover.service || true
check "hostile daemon: the failed-unit recovery restored the bundle" box grep -qx GREETING=from-the-bundle /etc/secbox/secbox.env
for _ in $(seq 40); do box systemctl is-active --quiet secbox.service && break; sleep 0.5; done
box systemctl start secbox-recover-check.service || true
box systemctl restart secbox.service || true
# The daemon rewrites its own binary; an administrator then types `secbox
# version` as root. It runs, as secbox.
current=$(box readlink /usr/local/lib/secbox/current)
box cp "/usr/local/lib/secbox/$current/secbox" /var/tmp/secbox-kept
# shellcheck disable=SC2016 # expanded by the container's shell
box runuser -u secbox -- sh -c 'printf "#!/bin/sh\nid -u >/var/tmp/secbox-ran-as; touch /etc/secbox-pwned-by-cli\n" >"$1/secbox.new" &&
  chmod 755 "$1/secbox.new" && mv -f "$1/secbox.new" "$1/secbox"' sh "/usr/local/lib/secbox/$current"
box /usr/local/bin/secbox version >/dev/null 2>&1 || true
check "hostile daemon: root's secbox ran the daemon's file as secbox, not root" \
  test "$(box cat /var/tmp/secbox-ran-as 2>/dev/null)" = "$(box id -u secbox)"
check "hostile daemon: so it could not write /etc" bash -c "! podman exec $name test -e /etc/secbox-pwned-by-cli"
# The installer, run again, puts the real binary back (and follows no link).
one_line_install >/dev/null 2>&1 || true
check "hostile daemon: the installer runs its own release's binary again" \
  box sh -c 'zstd -dcq /opt/secbox-test/release-0.1.0/secbox.tar.zst | tar -xO secbox | cmp -s - /usr/local/lib/secbox/current/secbox'
check "hostile daemon: root's podman holds no container at all" test -z "$(box podman ps -aq)"
check "hostile daemon: /etc, /etc/shadow and /etc/passwd are root's and unchanged" test "$(root_state)" = "$before_root"
check "hostile daemon: no outcome of the recovery landed in /etc" \
  bash -c "! podman exec $name ls -a /etc | grep -qE '^(\\.)?(att-|recover-)'"
check "hostile daemon: the box runs again" box systemctl is-active --quiet secbox.service

box /opt/secbox-test/install.sh --uninstall --purge >/dev/null 2>&1 || true
check "after --purge no secbox process runs" bash -c "! podman exec $name pgrep -f /usr/local/bin/secbox >/dev/null"
check "after --purge no postgres runs" bash -c "! podman exec $name pgrep -x postgres >/dev/null"
check "after --purge no secbox user" bash -c "! podman exec $name id secbox >/dev/null 2>&1"

# The nested containers go with the outer one (cleanup); say what this took.
echo "# systemd test: $(($(date +%s) - started)) s in all"
if [[ $failures -gt 0 ]]; then
  echo "# $failures failed; the simulator's log:"
  tail -n 20 "$work/cloudsim.log" || true
  echo "# the daemon's journal:"
  box journalctl -u secbox.service --no-pager -n 60 2>/dev/null || true
  exit 1
fi
echo "# all passed"
