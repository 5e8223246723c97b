#!/usr/bin/env bash
# Figures for the LAN server (issue 6), printed, never asserted:
#   - `wrk -t2 -c32 -d10s` on GET /api/lan/ban-list with 5,000 bans over HTTPS
#     keep-alive, beside nginx serving the same bytes as a static file with the
#     same certificate, in the same run;
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
work=$(mktemp -d)
chmod 0711 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A community with one guard and 5,000 bans, played by the simulator.
node - "$work/script.jsonl" <<'JS'
const { pbkdf2Sync } = require('node:crypto');
const fs = require('node:fs');
const salt = Buffer.from('bench-salt-00001');
const pin = `pbkdf2-sha256$10000$${salt.toString('base64')}$${pbkdf2Sync('2468', salt, 10000, 32, 'sha256').toString('base64')}`;
const snap = (entity, rows) => JSON.stringify({ v: 1, type: `snapshot.${entity}`, id: `c-${entity}`, ts: '2026-11-22T10:00:00Z',
  payload: { snapshotId: `s_${entity}`, version: 1, chunk: 1, chunks: 1, rows } });
const bans = Array.from({ length: 5000 }, (_, i) => ({ id: `b_${i}`, communityId: 'com_1', fullName: `Visitante Prohibido ${i}`,
  plate: `ABC-${String(i).padStart(4, '0')}`, reason: 'Robo', createdAt: '2026-10-01T12:00:00Z' }));
fs.writeFileSync(process.argv[2], [
  snap('user', [{ id: 'g_1', communityId: 'com_1', role: 'guard', displayName: 'Bench', pinHash: pin }]),
  snap('banned_visitor', bans)].join('\n') + '\n');
JS
mkdir -m 0700 "$work/sim"
"$cloudsim" --dir "$work/sim" --device dev_bench --bootstrap bt_bench_0123456789abcdef --script "$work/script.jsonl" \
  </dev/null >"$work/sim.json" 2>"$work/sim.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/sim.json" ]] && break; sleep 0.1; done
base=$(sed -n 's/.*"baseUrl":"\([^"]*\)".*/\1/p' "$work/sim.json")
gateway=$(sed -n 's/.*"gatewayUrl":"\([^"]*\)".*/\1/p' "$work/sim.json")

mkdir -m 0750 "$work/etc"
mkdir -m 0700 "$work/state"
printf 'CLOUD_CA_FILE=%s\nPAIRING_PORT=0\nLAN_PORT=0\nSECBOX_LOG_LEVEL=info\n' "$work/sim/ca.pem" >"$work/etc/secbox.env"
printf '%s\n' "$base" >"$work/etc/cloud"  # install.sh --cloud
SECBOX_ETC_DIR="$work/etc" SECBOX_STATE_DIR="$work/state" "$secbox" run >"$work/box.log" 2>&1 &
box=$!
pids+=("$box")
port_of() { sed -n "s/.*$1\.\",\"port\":\([0-9]*\).*/\1/p" "$work/box.log" | head -1; }
for _ in $(seq 600); do [[ -n $(port_of "LAN server ready") ]] && break; sleep 0.1; done
pairing=$(port_of "Pairing form ready")
lan=$(port_of "LAN server ready")
curl -fsS -o /dev/null -H 'Content-Type: application/json' \
  --data "{\"v\":1,\"cloudBaseUrl\":\"$base\",\"gatewayUrl\":\"$gateway\",\"deviceId\":\"dev_bench\",\"bootstrapToken\":\"bt_bench_0123456789abcdef\"}" \
  "http://127.0.0.1:$pairing/pair"
for _ in $(seq 300); do [[ $(grep -c "Applied a snapshot" "$work/box.log") -ge 2 ]] && break; sleep 0.1; done
token=$(curl -fsSk -H 'Content-Type: application/json' --data '{"guardId":"g_1","pin":"2468"}' \
  "https://127.0.0.1:$lan/api/lan/login" | sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p')
curl -fsSk -H "Authorization: Bearer $token" "https://127.0.0.1:$lan/api/lan/ban-list" -o "$work/ban-list.json"
echo "ban list: $(wc -c <"$work/ban-list.json") bytes, $(grep -o '"id":"b_' "$work/ban-list.json" | wc -l) bans"
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

run_wrk() { # name url [header]
  local out
  out=$(wrk -t2 -c32 -d10s --latency ${3:+-H "$3"} "$2")
  printf '%-8s %s req/s, p99 %s\n' "$1" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
}
echo "wrk -t2 -c32 -d10s, HTTPS keep-alive, GET /api/lan/ban-list (one run, wrk shares the two cores):"
# PERF_OUT=file: a perf profile of secbox while wrk runs against it.
if [[ -n ${PERF_OUT:-} ]]; then
  perf record -q -g -p "$box" -o "$PERF_OUT" -- sleep 9 2>/dev/null &
fi
run_wrk secbox "https://127.0.0.1:$lan/api/lan/ban-list" "Authorization: Bearer $token"
run_wrk nginx "https://127.0.0.1:18459/api/lan/ban-list"
