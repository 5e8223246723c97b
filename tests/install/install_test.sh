#!/usr/bin/env bash
# install.sh into test roots, checked file by file: a first install, a second
# run that changes nothing, an env file left alone, cut downloads that do
# nothing, a refused system, uninstall and purge, and the unit's sandbox
# rating. Run as root (ctest does): it makes the secbox user and runs the
# embedded database of the test root as it.
# Then the one-line install (curl … | sh) from the cloud simulator, which
# serves the script and the signed binary; and a binary signed by another
# key, refused.
#   tests/install/install_test.sh SOURCE_DIR SECBOX_BINARY CLOUDSIM_BINARY
set -euo pipefail
src=$1
binary=$2
cloudsim=$3
installer="$src/install.sh"
work=$(mktemp -d)
chmod 0711 "$work"
sim_pid=""
trap '[[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null; rm -rf "$work"' EXIT
failures=0
check() { # description command...
  local what=$1
  shift
  if "$@"; then echo "ok - $what"; else echo "FAIL - $what"; failures=$((failures + 1)); fi
}
mode_owner() { stat -c '%a %U:%G' "$1"; }
# Every path with its mode, owner and (for files) checksum: the tree's state.
snapshot() {
  (cd "$1" && find . -path ./var/lib/secbox/pg -prune -o -printf '%p %m %u:%g\n' | sort &&
    find . -path ./var/lib/secbox/pg -prune -o -type f -exec sha256sum {} + | sort)
}

# An update key, as the cloud's release key would be.
openssl genpkey -algorithm ed25519 -out "$work/update-key.pem" 2>/dev/null
openssl pkey -in "$work/update-key.pem" -pubout -out "$work/update.pub"
version=$("$binary" --version | sed -n 's/^secbox //p')

# 1. A first install into a test root.
root="$work/root"
mkdir "$root"
out=$("$installer" --root "$root" --binary "$binary" --web "$src/web" --update-key "$work/update.pub" 2>&1)
check "first install says it installed" grep -q "SecBox is installed" <<<"$out"
lib="$root/usr/local/lib/secbox"
check "binary installed as version $version, 0755, identical" \
  bash -c "[[ \$(stat -c %a '$lib/versions/$version/secbox') == 755 ]] && cmp -s '$binary' '$lib/versions/$version/secbox'"
check "current and known-good are that version" \
  bash -c "[[ \$(readlink '$lib/current') == versions/$version && \$(readlink '$lib/known-good') == versions/$version ]]"
check "the versions folder is the daemon's (it stages updates there)" test "$(mode_owner "$lib")" = "755 secbox:secbox"
check "secbox on the PATH is root's own script, not a link into the daemon's tree" \
  bash -c "[[ ! -L '$root/usr/local/bin/secbox' && \$(stat -c '%a %U' '$root/usr/local/bin/secbox') == '755 root' ]] &&
           grep -qx 'bin=/usr/local/lib/secbox/current/secbox' '$root/usr/local/bin/secbox'"
# shellcheck disable=SC2016 # the literal text of the script
check "it runs the current version as secbox when root calls it" \
  grep -qF 'setpriv --reuid=secbox --regid=secbox --init-groups --no-new-privs -- "$bin"' "$root/usr/local/bin/secbox"
check "another user is refused (the daemon's file would run with that user's rights)" \
  bash -c "! runuser -u nobody -- sh '$root/usr/local/bin/secbox' version 2>'$work/other-user.err' && grep -q 'run it as root' '$work/other-user.err'"
check "the installed version belongs to secbox, who wrote it" \
  test "$(stat -c '%U' "$lib/versions/$version/secbox")" = secbox
check "secbox-recover installed root's, 0755, outside the versions, as the source has it" \
  bash -c "[[ \$(stat -c '%a %U' '$root/usr/local/lib/secbox-recover') == '755 root' ]] && cmp -s '$src/update/scripts/secbox-recover' '$root/usr/local/lib/secbox-recover'"
check "the update key is pinned, root's, 0644" \
  bash -c "[[ \$(stat -c '%a %U' '$root/etc/secbox/update.pub') == '644 root' ]] && cmp -s '$work/update.pub' '$root/etc/secbox/update.pub'"
check "/etc/secbox is 1770 root:secbox (sticky)" test "$(mode_owner "$root/etc/secbox")" = "1770 root:secbox"
check "/etc/secbox/tools is 0755 root:root" test "$(mode_owner "$root/etc/secbox/tools")" = "755 root:root"
check "control.json is 0640 root:secbox" test "$(mode_owner "$root/etc/secbox/control.json")" = "640 root:secbox"
check "control.json allows no writes by default" bash -c "! grep -Eq 'restart|\"set\"|unset' '$root/etc/secbox/control.json'"
check "/var/lib/secbox is 0700 secbox:secbox" test "$(mode_owner "$root/var/lib/secbox")" = "700 secbox:secbox"
check "the embedded database was made" test -f "$root/var/lib/secbox/pg/data/PG_VERSION"
check "no postmaster left running" bash -c "! pgrep -f '[p]ostgres -D $root' >/dev/null"
unit="$root/etc/systemd/system/secbox.service"
check "unit installed 0644" test "$(stat -c %a "$unit")" = 644
check "unit is Type=notify with a watchdog" bash -c "grep -qx 'Type=notify' '$unit' && grep -q '^WatchdogSec=' '$unit'"
check "unit starts the current version" grep -qx "ExecStart=/usr/local/lib/secbox/current/secbox run" "$unit"
check "unit restarts on failure" grep -qx "Restart=on-failure" "$unit"
check "unit runs secbox-recover as root before each start" \
  grep -qx "ExecStartPre=+/usr/local/lib/secbox-recover --versions /usr/local/lib/secbox pre-start" "$unit"
check "unit restarts into a switched version (75) without counting it a failure" \
  bash -c "grep -qx 'RestartForceExitStatus=75' '$unit' && grep -qx 'SuccessExitStatus=75' '$unit'"
check "unit calls secbox-recover when it fails for good" grep -qx "OnFailure=secbox-recover.service" "$unit"
check "unit may write its versions folder and the compose projects" grep -qx "ReadWritePaths=/etc/secbox /var/lib/secbox /usr/local/lib/secbox /var/lib/secbox-compose" "$unit"
check "the recovery units and the 30 s timer are installed" \
  bash -c "grep -q 'secbox-recover --versions /usr/local/lib/secbox failed' '$root/etc/systemd/system/secbox-recover.service' &&
           grep -q 'secbox-recover --versions /usr/local/lib/secbox check' '$root/etc/systemd/system/secbox-recover-check.service' &&
           grep -qx 'OnUnitActiveSec=30s' '$root/etc/systemd/system/secbox-recover-check.timer'"
check "no secbox.env written" test ! -e "$root/etc/secbox/secbox.env"
"$src/scripts/build-web" "$work/web-built" >/dev/null
check "the guard app installed beside its daemon (built: the app and hls.js), file by file" \
  diff -r "$work/web-built" "$lib/versions/$version/web"
check "no node_modules or package files installed" \
  bash -c "[[ ! -e '$lib/versions/$version/web/node_modules' && ! -e '$lib/versions/$version/web/package.json' ]]"
check "the guard app is the daemon's, as the rest of its version" \
  test "$(stat -c '%U' "$lib/versions/$version/web/index.html")" = secbox
check "the unit names no web folder: the daemon serves the one beside it" bash -c "! grep -q LAN_WEB_DIR '$unit'"
check "the pairing address is printed" grep -q "pair this box" <<<"$out"
check "postgresql-common creates no default cluster" \
  grep -qx "create_main_cluster = false" "$root/etc/postgresql-common/createcluster.d/secbox.conf"
check "root's podman socket is not given to the secbox group" test ! -e "$root/etc/systemd/system/podman.socket.d/secbox.conf"
check "the containers run rootless as secbox-runtime, activated by a socket only the secbox group may use" \
  bash -c "grep -qx 'SocketUser=secbox-runtime' '$root/etc/systemd/system/secbox-runtime.socket' &&
           grep -qx 'SocketGroup=secbox' '$root/etc/systemd/system/secbox-runtime.socket' &&
           grep -qx 'SocketMode=0660' '$root/etc/systemd/system/secbox-runtime.socket' &&
           grep -qx 'User=secbox-runtime' '$root/etc/systemd/system/secbox-runtime.service' &&
           grep -qx 'ExecStart=/usr/bin/podman system service --time=0' '$root/etc/systemd/system/secbox-runtime.service'"
check "secbox-runtime has subordinate ids of its own" \
  bash -c "grep -q '^secbox-runtime:[0-9]*:65536$' /etc/subuid && grep -q '^secbox-runtime:[0-9]*:65536$' /etc/subgid"
check "the compose projects' folder is the daemon's, read by the runtime's group (set-group-id)" \
  test "$(mode_owner "$root/var/lib/secbox-compose")" = "2750 secbox:secbox-runtime"
check "the unit drives the runtime through its socket" \
  grep -qx "Environment=CONTAINER_HOST=unix:///run/secbox-runtime.sock SECBOX_COMPOSE_DIR=/var/lib/secbox-compose" "$unit"
check "the unit reads the journal (journal.tail)" grep -qx "SupplementaryGroups=video systemd-journal" "$unit"
check "no polkit rule while control.json allows no restart" test ! -e "$root/etc/polkit-1/rules.d/50-secbox.rules"
check "the polkit rule's writer is root's, outside the daemon's tree" \
  test "$(stat -c '%a %U' "$root/usr/local/lib/secbox-polkit-sync")" = "755 root"
check "a path unit rewrites the rule whenever control.json changes" \
  bash -c "grep -qx 'PathChanged=/etc/secbox/control.json' '$root/etc/systemd/system/secbox-polkit.path' &&
           grep -q 'secbox-polkit-sync /etc/secbox/control.json /etc/polkit-1/rules.d/50-secbox.rules' '$root/etc/systemd/system/secbox-polkit.service'"
if command -v systemd-analyze >/dev/null; then
  # Every service unit of the box, with the figure docs/security.md gives.
  for u in secbox.service:2.5 secbox-recover.service:2.5 secbox-recover-check.service:2.5 secbox-polkit.service:2.0 \
    secbox-runtime.service:7.0; do
    name=${u%%:*}
    exposure=$(systemd-analyze security --offline=true "$root/etc/systemd/system/$name" 2>/dev/null |
      sed -n "s/.*Overall exposure level for $name: \([0-9.]*\).*/\1/p")
    echo "# systemd-analyze security --offline=true $name: exposure $exposure"
    check "$name sandbox rated ${u##*:} or better ($exposure)" awk -v e="$exposure" -v m="${u##*:}" 'BEGIN { exit !(e != "" && e <= m) }'
  done
else
  check "systemd-analyze is installed (package systemd)" false
fi

# 2. A second run changes nothing and says so (the pinned key is kept).
before=$(snapshot "$root")
out=$("$installer" --root "$root" --binary "$binary" --web "$src/web" 2>&1)
check "second run says nothing changed" grep -q "nothing to change" <<<"$out"
check "second run left every file as it was" test "$before" = "$(snapshot "$root")"

# 2b. The allowed cloud: none given is warned about; --cloud pins it (root's,
# readable); another --cloud replaces it and says so; a bad URL is refused
# before anything changes; a later run without --cloud keeps it.
check "no --cloud: a warning that the box pairs with no cloud" grep -q "pairs with no cloud" <<<"$out"
check "no --cloud: no pin written" test ! -e "$root/etc/secbox/cloud"
out=$("$installer" --root "$root" --binary "$binary" --web "$src/web" --cloud https://cloud.example.com/ 2>&1)
check "--cloud writes /etc/secbox/cloud 0644 root:root" test "$(mode_owner "$root/etc/secbox/cloud")" = "644 root:root"
check "the pin holds the URL without its trailing slash" \
  test "$(grep -v '^#' "$root/etc/secbox/cloud")" = "https://cloud.example.com"
out=$("$installer" --root "$root" --binary "$binary" --web "$src/web" --cloud https://other.example.com 2>&1)
check "another --cloud replaces the pin and says so" \
  grep -q "the allowed cloud changes from https://cloud.example.com to https://other.example.com" <<<"$out"
pin_sum=$(sha256sum <"$root/etc/secbox/cloud")
for bad in http://cloud.example.com https://evil.example@cloud.example.com ftp://x "https://a b" cloud.example.com; do
  if "$installer" --root "$root" --binary "$binary" --cloud "$bad" >/dev/null 2>&1; then
    check "--cloud $bad refused" false
  fi
done
check "bad --cloud URLs changed nothing" test "$pin_sum" = "$(sha256sum <"$root/etc/secbox/cloud")"
out=$("$installer" --root "$root" --binary "$binary" --web "$src/web" 2>&1)
check "a run without --cloud keeps the pin" test "$pin_sum" = "$(sha256sum <"$root/etc/secbox/cloud")"
check "the installed daemon reads the pin as its allowed cloud" \
  bash -c "SECBOX_ETC_DIR='$root/etc/secbox' SECBOX_STATE_DIR='$work/none' '$binary' doctor 2>&1 | grep -q 'https://other.example.com'"

# 2c. A hostile daemon: links planted in the tree it owns, then a reinstall.
# Root's files behind them stay root's and unchanged; what root runs is not
# the daemon's file.
mkdir -m 0700 "$work/victim-dir"
printf "root's\n" >"$work/victim-file"
chmod 0600 "$work/victim-file"
victim_state="$(mode_owner "$work/victim-dir") $(mode_owner "$work/victim-file") $(sha256sum <"$work/victim-file")"
mv "$lib/versions/$version" "$lib/versions/kept"
runuser -u secbox -- ln -s "$work/victim-dir" "$lib/versions/$version"
runuser -u secbox -- ln -s "$work/victim-file" "$lib/update.state"
out=$("$installer" --root "$root" --binary "$binary" --web "$src/web" 2>&1) || echo "$out"
check "hostile: a version folder linked to a root folder is replaced, not followed" \
  bash -c "[[ -d '$lib/versions/$version' && ! -L '$lib/versions/$version' ]] && cmp -s '$binary' '$lib/versions/$version/secbox'"
check "hostile: root's folder and file behind the links are untouched" \
  test "$(mode_owner "$work/victim-dir") $(mode_owner "$work/victim-file") $(sha256sum <"$work/victim-file")" = "$victim_state"
check "hostile: nothing was written into root's folder" test -z "$(ls -A "$work/victim-dir")"
rm -rf "$lib/versions/kept"

# 3. An existing secbox.env is never overwritten.
printf 'DEVICE_ID=dev_kept\nCLOUD_BASE_URL=https://cloud.example.com\n' >"$root/etc/secbox/secbox.env"
chgrp secbox "$root/etc/secbox/secbox.env"
chmod 0640 "$root/etc/secbox/secbox.env"
sum=$(sha256sum <"$root/etc/secbox/secbox.env")
printf '{"metrics": {"allow": ["get"]}}\n' >"$root/etc/secbox/control.json"
control_sum=$(sha256sum <"$root/etc/secbox/control.json")
out=$("$installer" --root "$root" --binary "$binary" --web "$src/web" 2>&1)
check "secbox.env untouched" test "$sum" = "$(sha256sum <"$root/etc/secbox/secbox.env")"
check "a site's control.json untouched" test "$control_sum" = "$(sha256sum <"$root/etc/secbox/control.json")"
check "a secbox.env the daemon cannot rewrite is reported" grep -q "not owned by secbox" <<<"$out"
check "a paired box is reported as paired" grep -q "this box is paired" <<<"$out"

# 3b. units.restart: a polkit rule for exactly the units control.json names.
printf '{"units": {"allow": ["status", "restart"], "names": ["frigate.service", "x\\"; evil", "relay@1.service"]}}\n' \
  >"$root/etc/secbox/control.json"
"$installer" --root "$root" --binary "$binary" --web "$src/web" >/dev/null 2>&1
rule="$root/etc/polkit-1/rules.d/50-secbox.rules"
check "a polkit rule names the units control.json lets the daemon restart" \
  grep -qF '["frigate.service","relay@1.service"].indexOf(action.lookup("unit"))' "$rule"
check "the rule is for the secbox user's restarts only" \
  bash -c "grep -qF 'subject.user == \"secbox\"' '$rule' && grep -qF 'action.lookup(\"verb\") == \"restart\"' '$rule'"
printf '{"metrics": {"allow": ["get"]}}\n' >"$root/etc/secbox/control.json"
"$installer" --root "$root" --binary "$binary" --web "$src/web" >/dev/null 2>&1
check "the rule goes when control.json no longer allows restarts" test ! -e "$rule"

# 4. Cut downloads do nothing: every prefix of the script, run by sh.
size=$(wc -c <"$installer")
cut_root="$work/cut"
mkdir "$cut_root"
ran=0
bad=""
for ((n = 0; n < size - 1; n += 1)); do
  # Every byte near the end (where `main "$@"` is), every 11th elsewhere.
  if ((n < size - 200 && n % 11 != 0)); then continue; fi
  head -c "$n" "$installer" >"$work/cut.sh"
  sh "$work/cut.sh" --root "$cut_root" --binary "$binary" >"$work/cut.out" 2>&1 || true
  ran=$((ran + 1))
  if [[ -n $(ls -A "$cut_root") ]] || grep -q "secbox-install: [^e]" "$work/cut.out"; then
    bad="$bad $n"
    rm -rf "${cut_root:?}"/*
  fi
done
echo "# ran $ran cut copies of $size bytes"
check "no cut copy of the script did anything (cuts at:${bad:- none})" test -z "$bad"

# 5. A system that is not Debian 12 is refused, clearly, with nothing done.
printf 'ID=ubuntu\nVERSION_ID="22.04"\n' >"$work/os-release"
other="$work/other"
mkdir "$other"
if out=$(SECBOX_OS_RELEASE="$work/os-release" "$installer" --root "$other" --binary "$binary" 2>&1); then
  check "ubuntu refused" false
else
  check "ubuntu refused with a clear message" grep -q "Debian 12 (bookworm) only" <<<"$out"
fi
check "nothing installed on a refused system" test -z "$(ls -A "$other")"

# 6. Uninstall keeps the pairing and the data; purge removes them.
out=$("$installer" --uninstall --root "$root" 2>&1)
check "uninstall removed the binary, the versions, secbox-recover, the guard app and the units" \
  bash -c "[[ ! -e '$root/usr/local/bin/secbox' && ! -L '$root/usr/local/bin/secbox' && ! -e '$lib' &&
              ! -e '$root/usr/local/lib/secbox-recover' && ! -e '$root/usr/local/share/secbox' && ! -e '$unit' &&
              ! -e '$root/etc/systemd/system/secbox-recover-check.timer' ]]"
check "uninstall kept /etc/secbox and /var/lib/secbox" \
  bash -c "[[ -f '$root/etc/secbox/secbox.env' && -d '$root/var/lib/secbox/pg/data' ]]"
check "uninstall removed podman's drop-in" test ! -e "$root/etc/systemd/system/podman.socket.d/secbox.conf"
out=$("$installer" --uninstall --root "$root" 2>&1)
check "a second uninstall has nothing to remove" grep -q "nothing to remove" <<<"$out"
"$installer" --uninstall --purge --root "$root" >/dev/null 2>&1
check "purge removed /etc/secbox and /var/lib/secbox" \
  bash -c "[[ ! -e '$root/etc/secbox' && ! -e '$root/var/lib/secbox' ]]"

# 7. The one-line install, as a booth box gets it: the cloud (the simulator)
# serves install.sh with its URL and update key filled in, and the signed
# release for this machine (secbox-release: the stripped daemon stamped 7.0.0
# and the guard app); the script is piped into sh with no arguments.
release_tool=$(dirname "$cloudsim")/../release/secbox-release
objcopy --strip-debug "$binary" "$work/secbox-stripped"
mkdir -m 0700 "$work/sim"
sim_dir="$work/sim"
start_sim() { # extra simulator arguments...
  rm -f "$work/sim.ready"
  "$cloudsim" --dir "$sim_dir" --port 0 "$@" </dev/null >"$work/sim.ready" 2>"$work/sim.log" &
  sim_pid=$!
  for _ in $(seq 100); do [[ -s "$work/sim.ready" ]] && break; sleep 0.1; done
  base=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["baseUrl"])' "$work/sim.ready")
}
stop_sim() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; sim_pid=""; }
# The simulator's key, made once in its folder, signs the release.
start_sim
stop_sim
"$release_tool" --daemon "$work/secbox-stripped" --web "$work/web-built" --version 7.0.0 --counter 3 \
  --key "$work/sim/update-key.pem" --out "$work/release" --level 3 >/dev/null
start_sim --install-script "$installer" --release "$work/release"
ca="$work/sim/ca.pem"
piped="$work/piped"
mkdir "$piped"
# A booth box trusts the cloud's certificate through the system store; here
# curl is given the simulator's CA (CURL_CA_BUNDLE, also for the script's own
# downloads). --root keeps it in the test root.
out=$(curl -fsS --cacert "$ca" "$base/install.sh" | CURL_CA_BUNDLE="$ca" sh -s -- --root "$piped" 2>&1) || true
check "curl | sh installs from the cloud" grep -q "SecBox is installed" <<<"$out"
check "it checked the manifest's signature" grep -q "signature checks out with the pinned update key" <<<"$out"
check "then the bundle" grep -q "the bundle is the manifest" <<<"$out"
plib="$piped/usr/local/lib/secbox"
check "the release's daemon is installed as its built-in version" \
  bash -c "[[ \$('$plib/versions/7.0.0/secbox' --version) == 'secbox 7.0.0' ]]"
check "its guard app beside it" diff -r "$work/web-built" "$plib/versions/7.0.0/web"
check "its manifest beside it, and its counter as the box's" \
  bash -c "cmp -s '$work/release/manifest.json' '$plib/versions/7.0.0/manifest.json' && grep -qx COUNTER=3 '$plib/update.ledger'"
check "the cloud's update key is pinned" cmp -s "$work/sim/update.pub" "$piped/etc/secbox/update.pub"
check "the cloud it came from is the one it pairs with" grep -qx "$base" "$piped/etc/secbox/cloud"

# 8. Refusals, each before anything of SecBox is installed.
nothing_installed() {
  [[ ! -e "$1/usr/local/lib/secbox" && ! -e "$1/usr/local/bin/secbox" && ! -e "$1/etc/secbox" ]]
}
refused_install() { # name expected-sentence extra-args...
  local name=$1 says=$2
  shift 2
  mkdir -p "$work/$name"
  out=$(curl -fsS --cacert "$ca" "$base/install.sh" | CURL_CA_BUNDLE="$ca" sh -s -- --root "$work/$name" "$@" 2>&1) &&
    check "$name: refused" false
  check "$name: the refusal says why" grep -q "$says" <<<"$out" || echo "$out" | tail -3
  check "$name: nothing of SecBox was installed" nothing_installed "$work/$name"
}
refused_install "another-key" "not signed by the pinned update key" --update-key "$work/update.pub"
# A bundle that is not the manifest's.
cp "$work/release/secbox.tar.zst" "$work/bundle.good"
printf 'x' >>"$work/release/secbox.tar.zst"
refused_install "another-bundle" "not the manifest's size"
cp "$work/bundle.good" "$work/release/secbox.tar.zst"
# A manifest signed over other bytes.
cp "$work/release/manifest.json" "$work/manifest.good"
sed -i 's/"counter":3/"counter":4/' "$work/release/manifest.json"
refused_install "bad-signature" "not signed by the pinned update key"
cp "$work/manifest.good" "$work/release/manifest.json"
stop_sim
# The cloud redirects the bundle to plain http, where a server does serve
# it: the script refuses to follow (were it followed, the install would work).
http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
python3 -m http.server --bind 127.0.0.1 --directory "$work/release" "$http_port" >/dev/null 2>&1 &
http_pid=$!
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$http_port/manifest.json" && break; sleep 0.1; done
check "the plain http server serves the bundle" curl -fs -o /dev/null "http://127.0.0.1:$http_port/secbox.tar.zst"
start_sim --install-script "$installer" --release "$work/release" \
  --redirect "secbox-linux-$(dpkg --print-architecture).tar.zst=http://127.0.0.1:$http_port/secbox.tar.zst"
refused_install "redirect-to-http" "https only"
check "redirect-to-http: curl refused the protocol" grep -qi "protocol.*http.*not supported\|disabled" <<<"$out"
stop_sim
kill "$http_pid" 2>/dev/null || true
# A second run of a cloud's script that carries another key than the pinned
# one: refused, unless told so with --update-key.
sim_dir="$work/sim-other"  # another cloud: its script carries its own key
mkdir -m 0700 "$sim_dir"
start_sim --install-script "$installer" --release "$work/release"
out=$(curl -fsS --cacert "$sim_dir/ca.pem" "$base/install.sh" | CURL_CA_BUNDLE="$sim_dir/ca.pem" sh -s -- --root "$piped" 2>&1) &&
  check "a script with another key than the pinned one is refused" false
check "the refusal says why and how" grep -q "carries another update key.*--update-key" <<<"$out"
check "the pinned key stays" cmp -s "$work/sim/update.pub" "$piped/etc/secbox/update.pub"
stop_sim

echo "# $failures failed"
[[ $failures -eq 0 ]]
