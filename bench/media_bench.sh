#!/usr/bin/env bash
# Figures for the camera pipeline, printed, never asserted: CPU (%
# of one core) and resident memory of ffmpeg for one 640x480@15 testsrc
# camera and one 1280x720@30, and of `secbox run` supervising both, sampled
# over 20 s once both are live.
#   cmake --build build/release --target secbox && bench/media_bench.sh build/release
set -euo pipefail
build=${1:-build/release}
secbox="$build/appliance/secbox"
seconds=${SECONDS_SAMPLED:-20}
work=$(mktemp -d)
chmod 0711 "$work"
box=
cleanup() {
  [[ -n $box ]] && kill "$box" 2>/dev/null && wait "$box" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -m 0750 "$work/etc" "$work/etc/cameras"
mkdir -m 0700 "$work/state"
printf 'INPUT=lavfi:testsrc\nSIZE=640x480\nFPS=15\nBITRATE=600k\n' >"$work/etc/cameras/small.env"
printf 'INPUT=lavfi:testsrc\nSIZE=1280x720\nFPS=30\nBITRATE=2M\n' >"$work/etc/cameras/hd.env"
printf 'PAIRING_PORT=0\nLAN_PORT=0\n' >"$work/etc/secbox.env"
SECBOX_ETC_DIR="$work/etc" SECBOX_STATE_DIR="$work/state" "$secbox" run >"$work/box.log" 2>&1 &
box=$!
for _ in $(seq 600); do
  [[ $(grep -c 'Camera is live' "$work/box.log") -ge 2 ]] && break
  sleep 0.1
done
[[ $(grep -c 'Camera is live' "$work/box.log") -ge 2 ]] || { echo "the cameras did not go live" >&2; tail "$work/box.log" >&2; exit 1; }
sleep 3

ffmpeg_of() { # size: the pid of the ffmpeg whose input has that size
  for p in $(pgrep -P "$box" ffmpeg); do
    tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "size=$1:" && { echo "$p"; return; }
  done
}
small=$(ffmpeg_of 640x480)
hd=$(ffmpeg_of 1280x720)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
declare -A before
for p in "$box" "$small" "$hd"; do before[$p]=$(ticks "$p"); done
sleep "$seconds"
report() { # name pid
  local used=$(( $(ticks "$2") - before[$2] ))
  printf '%-32s CPU %5.1f %% of one core, RSS %s\n' "$1" "$(awk -v u="$used" -v hz="$hz" -v s="$seconds" 'BEGIN {print 100 * u / hz / s}')" \
    "$(awk '/VmRSS/ {print $2, $3}' "/proc/$2/status")"
}
echo "cameras from lavfi testsrc, libx264 ultrafast/zerolatency, 1 s HLS segments, sampled over ${seconds} s:"
report "ffmpeg 640x480@15 (600k)" "$small"
report "ffmpeg 1280x720@30 (2M)" "$hd"
report "secbox run (supervising both)" "$box"
