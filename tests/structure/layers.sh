#!/bin/sh
# The module layering of docs/architecture.md, checked on the sources: the
# components see the cloud only through protocol/ (never tunnel/), the LAN
# API sees the replica only through replica/ports.hpp, and protocol/ knows no
# component. Prints every include or link that breaks it; fails if any.
set -eu
root=${1:?usage: layers.sh SOURCE_DIR}
cd "$root"
bad=0

# forbid DIRS PATTERN WHY: no source under DIRS includes a header matching PATTERN.
forbid() {
  dirs=$1 pattern=$2 why=$3
  # shellcheck disable=SC2086 # DIRS is a list of folders
  hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]+\"($pattern)" $dirs --include='*.hpp' --include='*.cpp' || true)
  if [ -n "$hits" ]; then
    printf '%s\n%s\n\n' "$why:" "$hits"
    bad=1
  fi
}

# forbid_link DIRS TARGET WHY: no CMakeLists.txt under DIRS links TARGET.
forbid_link() {
  dirs=$1 target=$2 why=$3
  # shellcheck disable=SC2086
  hits=$(find $dirs -name CMakeLists.txt -exec grep -nwE "$target" {} + | grep -v "add_library" || true)
  if [ -n "$hits" ]; then
    printf '%s\n%s\n\n' "$why:" "$hits"
    bad=1
  fi
}

forbid "replica lan media control pairing alarms update" "tunnel/" "a component includes the tunnel (it must see only protocol/)"
forbid_link "replica lan media control pairing alarms update" "secbox_tunnel|secbox_tunnel_client" "a component links the tunnel"
forbid "protocol" "tunnel/|replica/|lan/|media/|control/|pairing/|appliance/|httpd/|update/|alarms/|envfile/" "protocol/ includes a component"
forbid "tunnel" "(replica|lan|media|control|pairing|alarms|update|envfile|httpd|appliance)/" "the tunnel includes a component (it carries protocol/ frames, nothing else)"
forbid_link "tunnel" "secbox_(replica|replica_ports|lan|media|control|pairing|alarms|update|envfile|httpd|appliance_core)" "the tunnel links a component"
forbid "common protocol tunnel replica httpd pairing alarms update lan media control envfile" "appliance/" "a part includes appliance/ (only the app wires the parts)"
forbid "pairing" "lan/" "the pairing form includes the LAN API (what they share lives in common/)"
forbid_link "pairing" "secbox_lan" "the pairing form links the LAN library"
forbid "httpd" "(protocol|tunnel|replica|lan|media|control|pairing|envfile|appliance|alarms|update)/" "httpd/ includes a component (it knows HTTP, not what is served)"
forbid "lan" "replica/(queue|reads|database|sync)\.hpp" "the LAN API includes the concrete replica (it takes replica/ports.hpp)"
forbid_link "lan" "secbox_replica" "the LAN library links the replica (it links secbox_replica_ports)"
forbid "control update media" "replica/(queue|reads|database|sync)\.hpp" "a component includes the concrete replica (its events go to replica/ports.hpp's EventSink)"
forbid_link "control update media" "secbox_replica" "a component links the replica (it links secbox_replica_ports)"
forbid "lan" "alarms/camera_alarms\.hpp" "the LAN includes how alarms are raised (it takes alarms/feed.hpp)"
forbid_link "lan" "secbox_alarms" "the LAN library links the alarms (it links secbox_alarm_feed)"
forbid "alarms" "replica/(queue|reads|database|sync)\.hpp|media/|lan/" "the alarms include the concrete replica, media or the LAN (they take replica/ports.hpp)"
forbid "media" "alarms/" "media/ includes the alarms (the app feeds them)"
forbid "common" "(protocol|tunnel|replica|lan|media|control|pairing|envfile|appliance|alarms|httpd|update)/" "common/ includes a module above it"

# One HTTP server core: only httpd/ accepts connections and speaks Beast's
# HTTP (the test peers under tools/ are not the box).
hits=$(grep -rnE "async_accept|^[[:space:]]*#[[:space:]]*include[[:space:]]+<boost/beast" \
  appliance common control envfile lan media pairing protocol replica tunnel update alarms \
  --include='*.hpp' --include='*.cpp' || true)
if [ -n "$hits" ]; then
  printf '%s\n%s\n\n' "an HTTP server outside httpd/ (serve through httpd::Server)" "$hits"
  bad=1
fi

# One curl client: libcurl is used in common/http_client only.
hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]+<curl/" . --include='*.hpp' --include='*.cpp' \
  --exclude-dir=build --exclude-dir=node_modules | grep -v '^\./common/src/http_client\.cpp:' || true)
if [ -n "$hits" ]; then
  printf '%s\n%s\n\n' "libcurl used outside common/http_client (use its get, post_json or get_stream)" "$hits"
  bad=1
fi

if [ "$bad" -ne 0 ]; then
  echo "The layering is broken (see docs/architecture.md)."
  exit 1
fi
echo "layers: ok"
