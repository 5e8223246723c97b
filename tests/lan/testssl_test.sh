#!/usr/bin/env bash
# testssl.sh (Debian package testssl.sh) against a running box's LAN port:
# no finding of severity HIGH or CRITICAL, except those a self-signed
# certificate must have (listed in `allowed` below, and in docs/lan.md).
#   tests/lan/testssl_test.sh SECBOX_BINARY
set -euo pipefail
binary=$1
work=$(mktemp -d)
chmod 0711 "$work"
box=""
cleanup() {
  [[ -n $box ]] && kill "$box" 2>/dev/null && wait "$box" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -m 0750 "$work/etc"
mkdir -m 0700 "$work/state"
printf 'PAIRING_PORT=0\nLAN_PORT=0\n' >"$work/etc/secbox.env"
SECBOX_ETC_DIR="$work/etc" SECBOX_STATE_DIR="$work/state" "$binary" run >"$work/box.log" 2>&1 &
box=$!
port=""
for _ in $(seq 600); do
  port=$(sed -n 's/.*LAN server ready\.","port":\([0-9]*\).*/\1/p' "$work/box.log" | head -1)
  [[ -n $port ]] && break
  kill -0 "$box" 2>/dev/null || { cat "$work/box.log"; exit 1; }
  sleep 0.1
done
[[ -n $port ]] || { echo "the LAN server did not start"; cat "$work/box.log"; exit 1; }

# Findings a self-signed LAN certificate has by nature: no chain to a public
# CA, no OCSP/CRL/CT, and no public trust for its host names.
allowed='^(cert_chain_of_trust|cert_trust|chain_of_trust|cert_ocspURL|cert_crlDistributionPoints|cert_revocation|OCSP_stapling|cert_certificateTransparency|DNS_CAArecord|cert_caIssuers)'
testssl --quiet --color 0 --warnings off --ip one --jsonfile "$work/testssl.json" "https://127.0.0.1:$port" \
  >"$work/testssl.txt" 2>&1 || true
[[ -s "$work/testssl.json" ]] || { echo "testssl produced no report"; tail -40 "$work/testssl.txt"; exit 1; }
# shellcheck disable=SC2016 # JavaScript, not shell: its template literals are not expanded here
node -e '
  const findings = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const allowed = new RegExp(process.argv[2]);
  const severe = findings.filter((f) => ["HIGH", "CRITICAL"].includes(f.severity));
  const excused = severe.filter((f) => allowed.test(f.id));
  const bad = severe.filter((f) => !allowed.test(f.id));
  for (const f of excused) console.log(`excused (self-signed): ${f.id} ${f.severity}: ${f.finding}`);
  for (const f of bad) console.log(`FINDING ${f.id} ${f.severity}: ${f.finding}`);
  console.log(`${findings.length} checks, ${severe.length} HIGH/CRITICAL, ${bad.length} not excused`);
  process.exit(bad.length ? 1 : 0);
' "$work/testssl.json" "$allowed"
