#!/usr/bin/env bash
# Figures for the LAN server, printed, never asserted:
#   - `wrk -t2 -c16 -d10s` on GET /api/lan/ban-list with 5,000 bans over HTTPS
#     keep-alive, beside nginx serving the same bytes as a static file with the
#     same certificate, in the same run, RUNS times (3), with each server's
#     CPU time a request. 16 connections: the box holds at most 16 from one
#     address (httpd::Settings::max_per_address), and wrk has only 127.0.0.1;
#     with more, the box refuses the rest and wrk measures its reconnecting;
#   - the idle `secbox run`'s resident memory with the LAN server up.
# Needs the packages wrk and nginx-light (or nginx), and a built secbox and
# secbox-cloudsim:
#   cmake --build build --target secbox secbox-cloudsim && bench/lan_bench.sh build
set -euo pipefail
build=${1:-build}
secbox="$build/appliance/secbox"
cloudsim="$build/tools/cloudsim/secbox-cloudsim"
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  echo "install wrk and nginx-light first" >&2
  exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/paired_box.sh
source "$here/paired_box.sh"
sleep 2
echo "idle secbox run, LAN server up: VmRSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$box/status") (embedded postmaster not counted)"

# nginx: the same bytes, the same certificate, keep-alive.
mkdir -p "$work/nginx/www/api/lan"
cp "$work/ban-list.json" "$work/nginx/www/api/lan/ban-list"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp;
  server {
    listen 127.0.0.1:0 ssl;
    listen 127.0.0.1:18459 ssl;
    ssl_certificate $work/state/lan/cert.pem;
    ssl_certificate_key $work/state/lan/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $work/nginx/www;
    default_type application/json;
    keepalive_requests 1000000;
  }
}
CONF
sed -i '/listen 127.0.0.1:0 ssl;/d' "$work/nginx/nginx.conf"
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime
run_wrk() { # name pid url [header]
  local out c0 c1
  c0=$(cpu_ticks "$2")
  out=$(wrk -t2 -c16 -d10s --latency ${4:+-H "$4"} "$3")
  c1=$(cpu_ticks "$2")
  awk -v name="$1" -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
    /Requests\/sec/ { rps = $2 }
    $1 == "99%" { p99 = $2 }
    /requests in/ { n = $1 }
    /Socket errors|Non-2xx/ { errors = errors "; " $0 }
    END { printf "%-8s %s req/s, p99 %s, %.3f ms of CPU a request%s\n", name, rps, p99, ticks * 1000 / hz / n, errors }' <<<"$out"
}
nginx_worker=$(pgrep -P "$(cat "$work/nginx/nginx.pid")")
echo "wrk -t2 -c16 -d10s, HTTPS keep-alive, GET /api/lan/ban-list (wrk shares the two cores):"
# PERF_OUT=file: a perf profile of secbox while wrk runs against it (first run).
if [[ -n ${PERF_OUT:-} ]]; then
  perf record -q -g -p "$box" -o "$PERF_OUT" -- sleep 9 2>/dev/null &
fi
for run in $(seq "${RUNS:-3}"); do
  echo "run $run:"
  run_wrk secbox "$box" "https://127.0.0.1:$lan/api/lan/ban-list" "Authorization: Bearer $token"
  run_wrk nginx "$nginx_worker" "https://127.0.0.1:18459/api/lan/ban-list"
done
