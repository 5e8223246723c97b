#!/usr/bin/env bash
# Where the idle daemon's memory goes, printed, never asserted: a `secbox
# run` paired with the simulator, 5,000 bans loaded and the LAN server up
# (bench/paired_box.sh), then its resident memory split by kind of mapping
# (/proc/PID/smaps): the main heap, other anonymous memory (malloc's
# per-thread arenas and the threads' stacks), code and data of the binary and
# its libraries; PSS counts shared pages (libc, OpenSSL, Boost) at their
# share. Once as it runs, once with glibc's MALLOC_ARENA_MAX=1 beside
# it, in the same run: the difference is what the per-thread arenas hold.
# Read after 12 s idle: the box hands freed memory back to the system
# (malloc_trim) every 10 s, with its host sample, so what is left is what it
# holds.
#   cmake --build build/release --target secbox secbox-cloudsim && bench/memory_bench.sh build/release
set -euo pipefail
build=${1:-build/release}
if [[ ${2:-} != --one ]]; then
  for arenas in default 1; do "$0" "$build" --one "$arenas"; done
  exit 0
fi
secbox=$build/appliance/secbox
cloudsim=$build/tools/cloudsim/secbox-cloudsim
[[ -x $secbox && -x $cloudsim ]] || { echo "build secbox and secbox-cloudsim in $build first" >&2; exit 1; }
box_env=()
[[ $3 == default ]] || box_env=("MALLOC_ARENA_MAX=$3")
# shellcheck source=bench/paired_box.sh
. "$(dirname "$0")/paired_box.sh" >/dev/null
sleep 12  # idle, past a malloc_trim
awk -v label="MALLOC_ARENA_MAX=$3" -v threads="$(awk '/^Threads/ {print $2}' "/proc/$box/status")" '
  /^[0-9a-f]+-[0-9a-f]+ / { perms = $2; name = (NF >= 6) ? $6 : ""; next }
  /^Rss:/ {
    kb = $2
    if (name == "[heap]") heap += kb
    else if (name ~ /^\[stack/) stack += kb
    else if (name == "" || name ~ /^\[anon/) anon += kb
    else if (perms ~ /x/) code += kb
    else filedata += kb
    total += kb
  }
  /^Pss:/ { pss += $2 }
  END {
    printf "%-20s RSS %6d kB (PSS %6d): main heap %6d, other anonymous (arenas, thread stacks) %6d, main stack %4d, code %6d, file data %5d; %d threads\n",
      label, total, pss, heap, anon, stack, code, filedata, threads
  }' "/proc/$box/smaps"
