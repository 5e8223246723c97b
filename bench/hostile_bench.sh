#!/usr/bin/env bash
# The hostile-load check, printed, never asserted: 100,000
# hostile LAN requests (bad logins with random ids, oversized headers and
# bodies) with slow readers and idle sockets held open, and all the while
# slow bodies from many addresses (LAN and pairing form), PIN guesses for the
# guard's own id from other addresses, and a camera seeing the plate of a ban
# whose reason is 300 KiB; while a guard keeps using the app from another
# address, signs in again every 3 s and keeps its alarm stream open. The
# guard's answers and latency, its sign-ins, the alarms it got, what the box
# did with the slow bodies, and the daemon's resident memory before, at its
# peak and after.
#   cmake --build build --target secbox secbox-cloudsim && bench/hostile_bench.sh build [TOTAL]
set -euo pipefail
build=${1:-build}
total=${2:-100000}
secbox="$build/appliance/secbox"
cloudsim="$build/tools/cloudsim/secbox-cloudsim"
here=$(cd "$(dirname "$0")" && pwd)

# A Frigate whose camera sees OVR-0001 (the oversized ban) every 2 s.
frigate_dir=$(mktemp -d)
ffmpeg -loglevel error -f lavfi -i testsrc=size=640x480:rate=1 -frames:v 1 "$frigate_dir/gate.jpg"
node "$here/node/frigate_peer.mjs" "$frigate_dir/gate.jpg" OVR-0001 2000 >"$frigate_dir/url" &
frigate=$!
for _ in $(seq 100); do [[ -s "$frigate_dir/url" ]] && break; sleep 0.1; done
box_env=("FRIGATE_URL=$(cat "$frigate_dir/url")")
rm -rf "$frigate_dir"
oversized_ban_kb=300
# shellcheck source=bench/paired_box.sh
source "$here/paired_box.sh"
pids+=("$frigate")
sleep 2
echo "secbox run with 5,000 bans (one with a 300 KiB reason), LAN server up: VmRSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$box/status")"
node "$here/node/hostile_lan.mjs" "$lan" "$token" "$total" "$box" "$pairing"
echo "secbox still running: $(kill -0 "$box" 2>/dev/null && echo yes || echo NO)"
