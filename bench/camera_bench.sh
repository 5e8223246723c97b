#!/usr/bin/env bash
# Figures for IP cameras, printed, never asserted (issue 34): a real RTSP
# server (tests/support/rtsp_camera.py: GStreamer's rtsp-server, digest auth,
# H.264 passed through) serves 1080p30 H.264 at 4 Mb/s with a 2 s keyframe
# interval on 127.0.0.1, and `secbox run` reads it:
#   - the anchor, in the same run: one such camera encoded as before
#     (MODE=encode, 640x480@15, libx264 ultrafast);
#   - one camera remuxed (the default for rtsp://);
#   - 16 cameras remuxed: the box's total CPU (secbox and every ffmpeg).
# CPU is % of one core from /proc/<pid>/stat over SECONDS_SAMPLED (20 s).
# Needs python3-gi, gir1.2-gst-rtsp-server-1.0 and GStreamer's good/bad
# plugins (scripts/install-deps --test), and a built secbox:
#   cmake --build build/release --target secbox && bench/camera_bench.sh build/release
set -euo pipefail
build=${1:-build/release}
secbox="$build/appliance/secbox"
seconds=${SECONDS_SAMPLED:-20}
cameras=${CAMERAS:-16}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
chmod 0711 "$work"
box=
server=
cleanup() {
  [[ -n $box ]] && kill "$box" 2>/dev/null && wait "$box" 2>/dev/null
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The camera's recording: made once and kept outside the clone (a cold
# machine makes it again, ~1 min).
cache=/var/cache/secbox-bench
mkdir -p "$cache" 2>/dev/null || cache="$work"
clip="$cache/cam-1080p30-gop2-4M.mp4"
if [[ ! -s $clip ]]; then
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 150 -c:v libx264 -preset veryfast \
    -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -b:v 4M -maxrate 4M -bufsize 8M "$clip.tmp.mp4" </dev/null
  mv "$clip.tmp.mp4" "$clip"
fi

mounts=()
for i in $(seq "$cameras"); do mounts+=(--mount "cam$i=$clip"); done
/usr/bin/python3 "$here/../tests/support/rtsp_camera.py" --user admin --password 'Caseta-2026' "${mounts[@]}" \
  >"$work/rtsp.out" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q '"port"' "$work/rtsp.out" && break; sleep 0.1; done
port=$(sed -n 's/.*"port": \([0-9]*\).*/\1/p' "$work/rtsp.out")
[[ -n $port ]] || { cat "$work/rtsp.out" >&2; exit 1; }

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# run_box name count camera-file-lines: starts secbox with `count` cameras,
# waits for them to be live, prints the CPU of the daemon and its ffmpegs.
run_box() {
  local name=$1 count=$2 extra=$3
  rm -rf "${work:?}/etc" "${work:?}/state"
  mkdir -m 0750 "$work/etc" "$work/etc/cameras"
  mkdir -m 0700 "$work/state"
  for i in $(seq "$count"); do
    printf 'INPUT=rtsp://admin:Caseta-2026@127.0.0.1:%s/cam%s\n%b' "$port" "$i" "$extra" >"$work/etc/cameras/cam$i.env"
  done
  printf 'PAIRING_PORT=0\nLAN_PORT=0\n' >"$work/etc/secbox.env"
  SECBOX_ETC_DIR="$work/etc" SECBOX_STATE_DIR="$work/state" "$secbox" run >"$work/box.log" 2>&1 &
  box=$!
  for _ in $(seq 600); do
    [[ $(grep -c 'Camera is live' "$work/box.log") -ge $count ]] && break
    sleep 0.1
  done
  [[ $(grep -c 'Camera is live' "$work/box.log") -ge $count ]] || { echo "the cameras did not go live" >&2; tail "$work/box.log" >&2; exit 1; }
  sleep 3
  local pids=() total_before=0 total_after=0 box_before box_after p
  mapfile -t pids < <(echo "$box"; pgrep -P "$box" ffmpeg)
  for p in "${pids[@]}"; do total_before=$((total_before + $(ticks "$p"))); done
  box_before=$(ticks "$box")
  sleep "$seconds"
  for p in "${pids[@]}"; do total_after=$((total_after + $(ticks "$p"))); done
  box_after=$(ticks "$box")
  awk -v t=$((total_after - total_before)) -v b=$((box_after - box_before)) -v hz="$hz" -v s="$seconds" -v n="$count" -v name="$name" \
    'BEGIN { printf "%-44s total %6.1f %% of one core (secbox %4.1f %%), %5.1f %% a camera\n", name, 100*t/hz/s, 100*b/hz/s, 100*t/hz/s/n }'
  grep -h "ffmpeg ended\|Camera stalled" "$work/box.log" | cut -c1-300 || true  # restarts, if any
  kill "$box"
  wait "$box" 2>/dev/null || true
  box=
}

echo "1080p30 H.264, 4 Mb/s, 2 s keyframes, from GStreamer's RTSP server on 127.0.0.1 (digest auth); sampled over ${seconds} s:"
run_box "anchor: 1 camera encoded (640x480@15)" 1 'MODE=encode\nSIZE=640x480\nFPS=15\n'
run_box "1 camera remuxed" 1 ''
run_box "$cameras cameras remuxed" "$cameras" ''
echo "(the RTSP server's own CPU is not counted: it stands for the cameras)"
