# Sourced by the bench scripts: a secbox run paired with the cloud simulator,
# playing a community with one guard (g_1, PIN 2468) and 5,000 bans.
# Needs $secbox and $cloudsim; sets work, pids (killed on exit), box (the
# daemon's pid), lan (its LAN port) and token (the guard's session).
# box_env (an array, optional): VAR=value words the daemon starts with.
# oversized_ban_kb (optional): the last ban is b_big with plate OVR-0001,
# whose reason is that many KiB (the shape that once closed every alarm stream).
# shellcheck shell=bash
: "${secbox:?}" "${cloudsim:?}"
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
node - "$work/script.jsonl" "${oversized_ban_kb:-0}" <<'JS'
const { pbkdf2Sync } = require('node:crypto');
const fs = require('node:fs');
const salt = Buffer.from('bench-salt-00001');
const pin = `pbkdf2-sha256$10000$${salt.toString('base64')}$${pbkdf2Sync('2468', salt, 10000, 32, 'sha256').toString('base64')}`;
const snap = (entity, rows) => JSON.stringify({ v: 1, type: `snapshot.${entity}`, id: `c-${entity}`, ts: '2026-11-22T10:00:00Z',
  payload: { snapshotId: `s_${entity}`, version: 1, chunk: 1, chunks: 1, rows } });
const bans = Array.from({ length: 5000 }, (_, i) => ({ id: `b_${i}`, communityId: 'com_1', fullName: `Visitante Prohibido ${i}`,
  plate: `ABC-${String(i).padStart(4, '0')}`, reason: 'Robo', createdAt: '2026-10-01T12:00:00Z' }));
const bigKb = Number(process.argv[3]);
if (bigKb > 0) {
  bans[bans.length - 1] = ({ id: 'b_big', communityId: 'com_1', fullName: 'Visitante Con Historia', plate: 'OVR-0001',
              reason: 'Historia larga. '.repeat(Math.ceil(bigKb * 1024 / 16)), createdAt: '2026-10-01T12:00:00Z' });
}
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
# shellcheck disable=SC2154 # box_env is the sourcing script's, when it has one
env ${box_env[@]+"${box_env[@]}"} SECBOX_ETC_DIR="$work/etc" SECBOX_STATE_DIR="$work/state" "$secbox" run >"$work/box.log" 2>&1 &
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
