#!/usr/bin/env bash
# The tunnel on a box whose only non-loopback address is IPv6 (a LAN that
# gave no IPv4 lease, or a container bridge with a link-local address): the
# tunnel tests run in a network namespace of their own with only loopback,
# given a unique-local IPv6 address besides ::1 (no other interface, no route
# anywhere), where glibc's AI_ADDRCONFIG refuses every IPv4 address,
# 127.0.0.1 included. Run as root.
#   tests/tunnel/ipv6-only-lan.sh TUNNEL_CLIENT_TEST
set -euo pipefail
binary=$1
[[ $(id -u) -eq 0 ]] || { echo "run as root (a network namespace)" >&2; exit 1; }
# shellcheck disable=SC2016 # the inner shell's own words
exec unshare --net -- bash -euo pipefail -c '
  ip link set lo up
  ip -6 addr add fd5b:1::1/128 dev lo nodad
  # The condition under test, checked: AI_ADDRCONFIG finds no IPv4 here.
  python3 -c "
import socket, sys
try:
    socket.getaddrinfo(\"127.0.0.1\", \"443\", 0, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
except socket.gaierror:
    sys.exit(0)
sys.exit(\"AI_ADDRCONFIG still resolves 127.0.0.1 here: the test would prove nothing\")
"
  exec "$0" --gtest_filter="TunnelTest.ConnectsWithTokenHeadersAndSubprotocolAndSendsHelloFirst:TunnelTest.ReconnectsAfterEachOfTwentyCloudRestarts"
' "$binary"
