#!/usr/bin/env bash
# The hostile-load check, printed, never asserted: 100,000
# hostile LAN requests (bad logins with random ids, oversized headers and
# bodies) with slow readers and idle sockets held open, while a guard keeps
# using the app from another address; the guard's answers and latency, and
# the daemon's resident memory before, at its peak and after.
#   cmake --build build --target secbox secbox-cloudsim && bench/hostile_bench.sh build [TOTAL]
set -euo pipefail
build=${1:-build}
total=${2:-100000}
secbox="$build/appliance/secbox"
cloudsim="$build/tools/cloudsim/secbox-cloudsim"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/paired_box.sh
source "$here/paired_box.sh"
sleep 2
echo "secbox run with 5,000 bans, LAN server up: VmRSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$box/status")"
node "$here/node/hostile_lan.mjs" "$lan" "$token" "$total" "$box"
echo "secbox still running: $(kill -0 "$box" 2>/dev/null && echo yes || echo NO)"
