#!/bin/sh
# Each rule of layers.sh fails on a deliberate violation: a copy of the
# sources in which one file breaks one rule at a time. Without this, a rule
# with a typo in its pattern would pass on any tree.
set -eu
src=${1:?usage: layers_violations.sh SOURCE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# The sources layers.sh reads, copied once.
mkdir "$work/tree"
(cd "$src" && find . \( -path ./build -o -name node_modules -o -name .git \) -prune -o \
  \( -name '*.hpp' -o -name '*.cpp' -o -name CMakeLists.txt \) -print) |
  while IFS= read -r f; do
    mkdir -p "$work/tree/$(dirname "$f")"
    cp "$src/$f" "$work/tree/$f"
  done

# violate NAME FILE LINE: layers.sh must fail while LINE is added to FILE.
violate() {
  name=$1 file=$2 line=$3
  [ -f "$work/tree/$file" ] || { echo "no such file: $file"; failed=1; return; }
  cp "$work/tree/$file" "$work/saved"
  printf '%s\n' "$line" >>"$work/tree/$file"
  if "$here/layers.sh" "$work/tree" >"$work/out" 2>&1; then
    echo "not caught: $name ($file: $line)"
    failed=1
  else
    echo "caught: $name"
  fi
  cp "$work/saved" "$work/tree/$file"
}

# The tree as it is passes.
if ! "$here/layers.sh" "$src" >"$work/out" 2>&1; then
  cat "$work/out"
  exit 1
fi
violate "tunnel -> a component" tunnel/src/cloud_session.cpp '#include "replica/database.hpp"'
violate "tunnel links a component" tunnel/CMakeLists.txt 'target_link_libraries(secbox_tunnel PRIVATE secbox_control)'
violate "a component -> appliance/" lan/src/api.cpp '#include "appliance/app.hpp"'
violate "common -> appliance/" common/src/log.cpp '#include "appliance/app.hpp"'
violate "pairing -> lan" pairing/src/page.cpp '#include "lan/certificate.hpp"'
violate "pairing links lan" pairing/CMakeLists.txt 'target_link_libraries(secbox_pairing PRIVATE secbox_lan)'
violate "protocol -> update" protocol/src/envelope.cpp '#include "update/manifest.hpp"'
violate "protocol -> alarms" protocol/src/envelope.cpp '#include "alarms/camera_alarms.hpp"'
violate "protocol -> envfile" protocol/src/envelope.cpp '#include "envfile/env_file.hpp"'
violate "common -> update" common/src/log.cpp '#include "update/manifest.hpp"'
violate "a component -> tunnel" media/src/camera.cpp '#include "tunnel/cloud_session.hpp"'
violate "httpd -> a component" httpd/src/server.cpp '#include "lan/api.hpp"'
violate "lan -> the concrete replica" lan/src/api.cpp '#include "replica/queue.hpp"'
violate "lan -> the concrete alarms" lan/src/streams.cpp '#include "alarms/camera_alarms.hpp"'
violate "lan links the alarms" lan/CMakeLists.txt 'target_link_libraries(secbox_lan PRIVATE secbox_alarms)'
violate "control -> the concrete replica" control/src/control_plane.cpp '#include "replica/queue.hpp"'
violate "update links the replica" update/CMakeLists.txt 'target_link_libraries(secbox_update PRIVATE secbox_replica)'
violate "an HTTP server outside httpd/" media/src/camera.cpp '#include <boost/beast/http.hpp>'
violate "libcurl outside http_client" media/src/camera.cpp '#include <curl/curl.h>'
exit "$failed"
