#!/bin/sh
# SecBox installer for a Debian 12 booth box, meant to be piped into sh:
#
#   curl -fsSL <cloud>/install.sh | sh
#
# With no --binary or --from-source, it downloads the release for this
# machine's architecture from the cloud it came from (cloud-protocol 7.6: a
# manifest, its Ed25519 signature, a tar+zstd bundle of the daemon and the
# guard app) and checks it as the box checks an update, before anything runs
# it: the signature over the manifest's bytes with the pinned update key
# (/etc/secbox/update.pub), product, target, expiry, counter, then the
# bundle's size and SHA-256. Downloads are https only, redirects included.
#
# Everything below is a function; only the last line runs anything, so a
# download cut short at any byte executes nothing.
#
# Options:
#   --from-source DIR  build SecBox from the source tree in DIR (development)
#   --binary FILE      install this already built `secbox` (development)
#   --release DIR      install this release folder (manifest.json, manifest.sig,
#                      secbox.tar.zst: what secbox-release makes), checked
#   --update-key FILE  the Ed25519 public key (PEM) updates must be signed by
#   --cloud URL        the one cloud this box may pair with (see CLOUD_URL)
#   --web DIR          the guard app's files (default: the source tree's web/)
#   --prefix DIR       where the program goes (default /usr/local)
#   --root DIR         install into DIR as if it were / (tests, images): no
#                      packages and no systemd calls
#   --uninstall        remove what the installer installed; keeps /etc/secbox
#                      and /var/lib/secbox (the pairing and the data)
#   --purge            with --uninstall: remove those too, and the user
#   --help             this text
set -eu

# ---------------------------------------------------------------- settings --

init_settings() {
  SOURCE_DIR=""
  BINARY=""
  RELEASE_DIR=""
  RELEASE_COUNTER=""
  WEB_SRC=""
  PREFIX="/usr/local"
  ROOT=""
  ACTION="install"
  PURGE=0
  CHANGED=0
  # The cloud this box belongs to. A cloud that serves this script fills this
  # line in with its own base URL (docs/wire-format.md), so the box it
  # installs pairs with that cloud only; --cloud URL overrides it.
  CLOUD_URL=""
  # The key this box's software must be signed by (PEM, base64 on one line).
  # The cloud that serves this script fills it in, as CLOUD_URL; --update-key
  # FILE overrides it. Once pinned, /etc/secbox/update.pub is the only key
  # the box trusts: update.apply carries no key.
  UPDATE_KEY_B64=""
  UPDATE_KEY_FILE=""
  # podman and podman-compose run the box's containers (cloud control's
  # compose restarts); dbus and polkitd let the daemon restart the units
  # control.json names, and nothing else.
  RUNTIME_PACKAGES="postgresql ffmpeg ca-certificates curl openssl libpqxx-6.4 libcurl4 libssl3 libsystemd0 libyaml-cpp0.7
    podman podman-compose uidmap slirp4netns dbus polkitd zstd libarchive13"
}

usage() {
  cat <<'EOF'
Usage: install.sh [--from-source DIR | --binary FILE | --release DIR] [--cloud URL] [--update-key FILE]
                  [--prefix DIR] [--root DIR]
       install.sh --uninstall [--purge] [--prefix DIR] [--root DIR]

Installs SecBox on a Debian 12 box, as root: runtime packages, the program,
the secbox system user, /etc/secbox (0750) and /var/lib/secbox (0700), the
embedded database, and a systemd unit (enabled and started when systemd runs).
Running it again changes nothing that is already right; an existing
/etc/secbox/secbox.env is never touched.

  (none of the three below: download the signed release for this machine
   from the cloud, and check it with the pinned update key)
  --from-source DIR  build SecBox from the source tree in DIR
  --binary FILE      install this already built `secbox` instead of building
  --release DIR      install the release in DIR (manifest.json, manifest.sig,
                     secbox.tar.zst), with the same checks as a download
  --update-key FILE  the Ed25519 public key (PEM) the box's software is signed
                     by, pinned as /etc/secbox/update.pub (default: the key
                     already pinned, else the key of the cloud this script
                     came from). A script that carries another key than the
                     pinned one is refused unless --update-key says which.
  --cloud URL        the one cloud this box may pair with (https://…): written
                     to /etc/secbox/cloud; a pairing QR naming another cloud is
                     refused (default: the cloud this script came from)
  --web DIR          the guard app's files (default: DIR/web of --from-source)
  --prefix DIR       where the program goes (default /usr/local)
  --root DIR         install into DIR as if it were / (tests, images): no
                     packages and no systemd calls (the secbox user is still
                     made: the embedded database runs as it)
  --uninstall        remove the program and the unit; keeps the pairing and data
  --purge            with --uninstall: remove /etc/secbox, /var/lib/secbox, the user
EOF
}

say() { printf 'secbox-install: %s\n' "$*"; }
fail() {
  printf 'secbox-install: error: %s\n' "$*" >&2
  exit 1
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --from-source) [ $# -ge 2 ] || fail "--from-source needs a directory"; SOURCE_DIR=$2; shift 2 ;;
      --binary) [ $# -ge 2 ] || fail "--binary needs a file"; BINARY=$2; shift 2 ;;
      --release) [ $# -ge 2 ] || fail "--release needs a directory"; RELEASE_DIR=$2; shift 2 ;;
      --web) [ $# -ge 2 ] || fail "--web needs a directory"; WEB_SRC=$2; shift 2 ;;
      --cloud) [ $# -ge 2 ] || fail "--cloud needs a URL"; CLOUD_URL=$2; shift 2 ;;
      --update-key) [ $# -ge 2 ] || fail "--update-key needs a file"; UPDATE_KEY_FILE=$2; shift 2 ;;
      --prefix) [ $# -ge 2 ] || fail "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
      --root) [ $# -ge 2 ] || fail "--root needs a directory"; ROOT=$2; shift 2 ;;
      --uninstall) ACTION="uninstall"; shift ;;
      --purge) PURGE=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) fail "unknown option: $1 (see --help)" ;;
    esac
  done
  [ "$PURGE" -eq 0 ] || [ "$ACTION" = "uninstall" ] || fail "--purge goes with --uninstall"
  case "$PREFIX" in /*) ;; *) fail "--prefix must be an absolute path" ;; esac
  if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || fail "--root $ROOT is not a directory"
    ROOT=$(cd "$ROOT" && pwd)
  fi
  if [ "$ACTION" = "install" ] && [ -z "$BINARY" ] && [ -z "$SOURCE_DIR" ] && [ -z "$RELEASE_DIR" ] &&
    [ -z "$CLOUD_URL" ]; then
    # Checked before anything changes.
    fail "nothing to install from: run the script the cloud serves (curl -fsSL <cloud>/install.sh | sh), or pass --cloud URL, --binary FILE or --from-source DIR"
  fi
  if [ -n "$UPDATE_KEY_FILE" ]; then
    [ -r "$UPDATE_KEY_FILE" ] || fail "--update-key $UPDATE_KEY_FILE cannot be read"
    grep -q 'BEGIN PUBLIC KEY' "$UPDATE_KEY_FILE" || fail "--update-key $UPDATE_KEY_FILE is not a PEM public key"
  fi
  if [ -n "$CLOUD_URL" ]; then check_cloud_url "$CLOUD_URL"; fi
  BIN_PATH="$ROOT$PREFIX/bin/secbox"
  CURRENT_BIN="$ROOT$PREFIX/lib/secbox/current/secbox"
  VERSIONS_DIR="$ROOT$PREFIX/lib/secbox"
  RECOVER_PATH="$ROOT$PREFIX/lib/secbox-recover"
  if [ -z "$WEB_SRC" ] && [ -n "$SOURCE_DIR" ]; then WEB_SRC="$SOURCE_DIR/web"; fi
  ETC_DIR="$ROOT/etc/secbox"
  STATE_DIR="$ROOT/var/lib/secbox"
  RUNTIME_HOME="$ROOT/var/lib/secbox-runtime"
  COMPOSE_DIR="$ROOT/var/lib/secbox-compose"
  UNIT_PATH="$ROOT/etc/systemd/system/secbox.service"
}

# ------------------------------------------------------------------ checks --

# The same rule as the daemon's (appliance/src/config.cpp): https, or http for
# this machine's own address; no user name, backslash or space to confuse
# which host is meant.
check_cloud_url() {
  case "$1" in
    *@* | *\\* | *" "* | *"	"*) fail "--cloud $1: a URL without '@', '\\' or spaces" ;;
    https://?*) ;;
    http://127.* | http://localhost | http://localhost[:/]* | "http://[::1]"*) ;;
    *) fail "--cloud $1: must be an https:// URL (http:// only for this machine's own address)" ;;
  esac
}

os_release_file() { printf '%s' "${SECBOX_OS_RELEASE:-/etc/os-release}"; }

check_system() {
  os_release=$(os_release_file)
  [ -r "$os_release" ] || fail "cannot read $os_release: SecBox installs on Debian 12 only"
  os_id=$(sed -n 's/^ID=//p' "$os_release" | tr -d '"')
  os_version=$(sed -n 's/^VERSION_ID=//p' "$os_release" | tr -d '"')
  if [ "$os_id" != "debian" ] || [ "$os_version" != "12" ]; then
    fail "this is ${os_id:-an unknown system} ${os_version:-}; SecBox installs on Debian 12 (bookworm) only"
  fi
  [ "$(id -u)" -eq 0 ] || fail "run as root (for example: curl -fsSL <url> | sudo sh -s -- …)"
}

systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# ---------------------------------------------------------------- install --

# Debian's postgresql package creates and starts its own cluster (15/main on
# 127.0.0.1:5432) when none exists; the box uses only its embedded one, so
# postgresql-common is told to create none.
no_default_cluster() {
  conf="$ROOT/etc/postgresql-common/createcluster.d/secbox.conf"
  [ -f "$conf" ] && return 0
  mkdir -p "$(dirname "$conf")"
  printf '%s\n' "# Installed by SecBox: the box runs its own embedded cluster in /var/lib/secbox/pg." \
    "create_main_cluster = false" >"$conf"
  say "told postgresql-common to create no default cluster ($conf)"
  CHANGED=1
}

# A default cluster left by an earlier install (before the setting above) is
# only reported: it may hold someone's data.
report_default_cluster() {
  [ -z "$ROOT" ] || return 0
  if [ -d /etc/postgresql/15/main ]; then
    say "note: Debian's own PostgreSQL cluster 15/main exists beside the box's embedded one; if nothing uses it: pg_dropcluster --stop 15 main"
  fi
}

install_packages() {
  [ -z "$ROOT" ] || return 0
  missing=""
  for p in $RUNTIME_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    say "installing packages:$missing"
    apt-get update -q
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    CHANGED=1
  fi
}

# The update key to pin: --update-key, else the one pinned by an earlier
# install, else the one this script came with. A script that carries another
# key than the pinned one is refused: a second run of some cloud's script
# must not re-pin the box's key silently (--update-key replaces it, and says
# so). Written to a temp file.
update_key() {
  KEY_TMP=$(mktemp)
  if [ -n "$UPDATE_KEY_FILE" ]; then
    cp "$UPDATE_KEY_FILE" "$KEY_TMP"
  elif [ -f "$ETC_DIR/update.pub" ]; then
    cp "$ETC_DIR/update.pub" "$KEY_TMP"
    if [ -n "$UPDATE_KEY_B64" ]; then
      carried=$(mktemp)
      printf '%s' "$UPDATE_KEY_B64" | base64 -d >"$carried" 2>/dev/null || true
      if ! cmp -s "$carried" "$KEY_TMP"; then
        rm -f "$carried" "$KEY_TMP"
        fail "this script carries another update key than the one this box pinned ($ETC_DIR/update.pub): nothing was changed; to replace the pinned key, pass it explicitly with --update-key FILE"
      fi
      rm -f "$carried"
    fi
  elif [ -n "$UPDATE_KEY_B64" ]; then
    printf '%s' "$UPDATE_KEY_B64" | base64 -d >"$KEY_TMP" 2>/dev/null || fail "the update key in this script is not base64"
  else
    rm -f "$KEY_TMP"
    KEY_TMP=""
    return 0
  fi
  grep -q 'BEGIN PUBLIC KEY' "$KEY_TMP" || fail "the update key is not a PEM public key"
}

machine_arch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    armv7l) echo armhf ;;
    *) uname -m ;;
  esac
}

# The release from the cloud: its manifest and signature, then its bundle,
# https only (a redirect to http is refused too).
download_release() {
  [ -n "$KEY_TMP" ] || fail "no update key to check the download with (--update-key FILE, or the script the cloud serves)"
  command -v curl >/dev/null || fail "curl is needed to download SecBox"
  arch=$(machine_arch)
  base=$(printf '%s' "$CLOUD_URL" | sed 's:/*$::')
  case "$base" in https://*) ;; *) fail "the cloud $base is not https: nothing is downloaded over plain http" ;; esac
  DOWNLOAD_DIR=$(mktemp -d)
  say "downloading SecBox for $arch from $base"
  for f in manifest.json manifest.sig tar.zst; do
    to=$f
    [ "$f" = tar.zst ] && to=secbox.tar.zst
    curl -fsSL --proto '=https' --proto-redir '=https' --max-redirs 5 --retry 3 --max-filesize 67108864 \
      -o "$DOWNLOAD_DIR/$to" "$base/files/secbox-linux-$arch.$f" ||
      fail "the download of $base/files/secbox-linux-$arch.$f failed (https only, redirects included)"
  done
  RELEASE_DIR=$DOWNLOAD_DIR
}

# One field of the manifest, a one-line JSON object whose signature has
# been checked: "key":"value" or "key":number.
manifest_field() { # file key
  sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" "$1" | head -n 1
}

# The release checked as the box checks an update (cloud-protocol 7.6),
# before anything of it runs: the signature over exactly the manifest's
# bytes (openssl, the pinned key), product, target, expiry, version, the
# counter against what this box has run, then the bundle's size and SHA-256;
# unpacked into a fresh folder, it must hold only files and folders, exactly
# secbox and web/, and the daemon must state the manifest's version.
check_release() {
  [ -n "$KEY_TMP" ] || fail "no update key to check the release with (--update-key FILE)"
  command -v openssl >/dev/null || fail "openssl is needed to check SecBox's signature"
  command -v zstd >/dev/null || fail "zstd is needed to unpack SecBox"
  m="$RELEASE_DIR/manifest.json"
  for f in "$m" "$RELEASE_DIR/manifest.sig" "$RELEASE_DIR/secbox.tar.zst"; do
    [ -f "$f" ] || fail "the release has no $(basename "$f")"
  done
  [ "$(wc -c <"$m")" -le 4096 ] || fail "the manifest is over 4 KiB: nothing was installed"
  if ! openssl pkeyutl -verify -pubin -inkey "$KEY_TMP" -rawin -in "$m" \
    -sigfile "$RELEASE_DIR/manifest.sig" >/dev/null 2>&1; then
    fail "the release's manifest is not signed by the pinned update key: nothing was installed"
  fi
  say "the manifest's signature checks out with the pinned update key"
  product=$(manifest_field "$m" product)
  target=$(manifest_field "$m" target)
  version=$(manifest_field "$m" version)
  counter=$(manifest_field "$m" counter)
  sha=$(manifest_field "$m" sha256)
  size=$(manifest_field "$m" size)
  expires=$(manifest_field "$m" expiresAt)
  [ "$product" = secbox ] || fail "the release is for product $product, not secbox"
  [ "$target" = "linux-$(machine_arch)" ] || fail "the release is for $target, and this box is linux-$(machine_arch)"
  expires_s=$(date -d "$expires" +%s 2>/dev/null) || fail "the manifest's expiresAt is not a time"
  [ "$(date +%s)" -lt "$expires_s" ] || fail "the release's manifest expired at $expires: nothing was installed"
  case "$version" in '' | *[!A-Za-z0-9.+_-]* | [!A-Za-z0-9]*) fail "the manifest's version is not a version name" ;; esac
  case "$counter" in '' | *[!0-9]*) fail "the manifest's counter is not a number" ;; esac
  case "$size" in '' | *[!0-9]*) fail "the manifest's size is not a number" ;; esac
  case "$sha" in *[!0-9a-f]*) fail "the manifest's sha256 is not lowercase hex" ;; esac
  [ "${#sha}" -eq 64 ] || fail "the manifest's sha256 is not 64 hex digits"
  have=$(box_counter)
  [ "$counter" -ge "$have" ] ||
    fail "the release's counter $counter is below this box's $have (an older release than one it has run): nothing was installed"
  b="$RELEASE_DIR/secbox.tar.zst"
  [ "$(wc -c <"$b")" -eq "$size" ] || fail "the bundle is not the manifest's size: nothing was installed"
  [ "$(sha256sum "$b" | cut -d' ' -f1)" = "$sha" ] || fail "the bundle's SHA-256 is not the manifest's: nothing was installed"
  say "the bundle is the manifest's ($size bytes, sha256 $sha)"
  UNPACKED=$(mktemp -d)
  zstd -dcq "$b" | tar -x --no-same-owner --no-same-permissions --no-overwrite-dir -C "$UNPACKED" ||
    fail "the bundle cannot be unpacked"
  [ -z "$(find "$UNPACKED" -mindepth 1 ! -type f ! -type d)" ] || fail "the bundle holds something besides files and folders"
  extra=$(cd "$UNPACKED" && find . -mindepth 1 -maxdepth 1 ! -name secbox ! -name web)
  if [ -n "$extra" ] || [ ! -f "$UNPACKED/secbox" ] || [ ! -d "$UNPACKED/web" ]; then
    fail "the bundle must hold exactly secbox and web/"
  fi
  chmod 0755 "$UNPACKED/secbox"
  said=$("$UNPACKED/secbox" --version 2>&1) || fail "the bundle's daemon does not run on this box: $(printf '%s' "$said" | head -n 1)"
  built_in=$(printf '%s\n' "$said" | sed -n 's/^secbox //p' | head -n 1)
  [ "$built_in" = "$version" ] || fail "the bundle's daemon is version ${built_in:-unknown}, not the manifest's $version"
  BINARY="$UNPACKED/secbox"
  WEB_SRC="$UNPACKED/web"
  RELEASE_COUNTER=$counter
  RELEASE_MANIFEST=$m
}

# The binary to install: the one given, downloaded, or built from the source tree.
obtain_binary() {
  if [ -n "$BINARY" ]; then
    [ -x "$BINARY" ] || fail "--binary $BINARY is not an executable file"
    return 0
  fi
  if [ -z "$SOURCE_DIR" ]; then
    [ -n "$RELEASE_DIR" ] || download_release
    check_release
    return 0
  fi
  if [ ! -f "$SOURCE_DIR/CMakeLists.txt" ] || [ ! -d "$SOURCE_DIR/appliance" ]; then
    fail "$SOURCE_DIR does not look like the SecBox source tree"
  fi
  if [ -z "$ROOT" ]; then
    "$SOURCE_DIR/scripts/install-deps"
  fi
  build="$SOURCE_DIR/build/install"
  say "building SecBox in $build (a few minutes on a small box)"
  cmake -S "$SOURCE_DIR" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSECBOX_TESTS=OFF >/dev/null
  cmake --build "$build" --target secbox -j "$(nproc)" >/dev/null
  BINARY="$build/appliance/secbox"
}

# The binary as one version beside the others (docs/updates.md): the daemon
# stages updates in $PREFIX/lib/secbox/versions and switches `current`; the
# unit starts `current`; `known-good` is what secbox-recover goes back to.
binary_version() {
  v=$("$BINARY" --version 2>/dev/null | sed -n 's/^secbox //p' | head -n 1)
  case "$v" in
    '' | *[!A-Za-z0-9.+_-]* | [!A-Za-z0-9]*) fail "$BINARY does not say its version (secbox --version)" ;;
  esac
  printf '%s' "$v"
}

# Root never works by path inside the versions tree: the daemon owns it and
# can plant a link anywhere in it, which root's chmod, chown, cp or mkdir
# would follow. What is made there is made by the daemon's own user (no
# other groups, no way to gain privilege): a planted link then leads nowhere
# the daemon could not already go. Root only reads what it hands over.
as_secbox() {
  setpriv --reuid=secbox --regid=secbox --init-groups --no-new-privs --reset-env -- "$@"
}

daemon_dir() { # a folder of the versions tree
  if [ -d "$1" ] && [ ! -L "$1" ]; then return 0; fi
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_secbox sh -c 'rm -f "$1" && mkdir -m 755 "$1"' sh "$1" || fail "cannot make $1 as secbox"
  say "created $1"
  CHANGED=1
}

daemon_file() { # mode source destination: root reads the source, secbox writes
  if [ ! -L "$3" ] && as_secbox cmp -s /dev/stdin "$3" <"$2"; then return 0; fi
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_secbox sh -c 'umask 022; t="$2.new.$$"; rm -f "$t" && cat >"$t" && chmod "$1" "$t" && mv -f "$t" "$2"' \
    sh "$1" "$3" <"$2" || fail "cannot install $3 as secbox"
  say "installed $3"
  CHANGED=1
}

point_link() { # link version
  want="versions/$2"
  [ "$(readlink "$VERSIONS_DIR/$1" 2>/dev/null || true)" = "$want" ] && return 0
  # shellcheck disable=SC2016 # expanded by the inner shell
  as_secbox sh -c 'rm -f "$1.new" && ln -s "$2" "$1.new" && mv -f -T "$1.new" "$1"' \
    sh "$VERSIONS_DIR/$1" "$want" || fail "cannot point $1 at $2"
  say "$1 is version $2"
  CHANGED=1
}

# The administrator's `secbox`: root's own small script, never a link into the
# daemon's tree. Run by root, it runs the current version as secbox (root
# never executes a file the daemon can write); `update` then gets its restart
# from root. Any other user (an administrator's own account, which may hold
# sudo) is refused: the daemon's file would run with that account's rights.
write_command() {
  cat <<EOF
#!/bin/sh
# Installed by install.sh: the SecBox command. As root it runs the current
# version as the secbox user, which owns that file (docs/security.md).
bin=$PREFIX/lib/secbox/current/secbox
if [ "\$(id -un)" = secbox ]; then exec "\$bin" "\$@"; fi
if [ "\$(id -u)" -ne 0 ]; then
  echo "secbox: run it as root (it then runs as secbox) or as secbox; as \$(id -un) it would run a file the daemon can write with your rights" >&2
  exit 1
fi
case "\${1:-}" in
  update)
    setpriv --reuid=secbox --regid=secbox --init-groups --no-new-privs -- "\$bin" "\$@" --no-restart || exit
    if [ -d /run/systemd/system ]; then
      for a in "\$@"; do [ "\$a" = --no-restart ] && exit 0; done
      systemctl restart --no-block secbox.service && echo "Restarting secbox.service."
    fi ;;
  *) exec setpriv --reuid=secbox --regid=secbox --init-groups --no-new-privs -- "\$bin" "\$@" ;;
esac
EOF
}

install_versions() {
  VERSION=$(binary_version)
  ensure_dir 755 secbox:secbox "$VERSIONS_DIR"
  daemon_dir "$VERSIONS_DIR/versions"
  daemon_dir "$VERSIONS_DIR/versions/$VERSION"
  daemon_file 755 "$BINARY" "$VERSIONS_DIR/versions/$VERSION/secbox"
  point_link current "$VERSION"
  point_link known-good "$VERSION"
  # An update left half-way is over: this install decides what runs.
  as_secbox rm -f "$VERSIONS_DIR/update.state"
  # The command: root's own script (an earlier install made a link).
  command_tmp=$(mktemp)
  write_command >"$command_tmp"
  if [ -L "$BIN_PATH" ]; then rm -f "$BIN_PATH"; fi
  install_file 755 "$command_tmp" "$BIN_PATH"
  rm -f "$command_tmp"
  # The recovery script, root's, outside what the daemon can write: it comes
  # with the installed version and no update replaces it.
  recover_tmp=$(mktemp)
  "$BINARY" recover-script >"$recover_tmp" || fail "$BINARY could not print its recovery script"
  install_file 755 "$recover_tmp" "$RECOVER_PATH"
  rm -f "$recover_tmp"
}

# The pinned update key (/etc/secbox/update.pub, root's): kept unless another
# is given, which replaces it and says so.
install_update_key() {
  if [ -z "$KEY_TMP" ]; then
    say "warning: no update key (--update-key FILE): this box accepts no software update until one is pinned"
    return 0
  fi
  if [ -f "$ETC_DIR/update.pub" ] && ! cmp -s "$KEY_TMP" "$ETC_DIR/update.pub"; then
    say "the pinned update key changes"
  fi
  install_file 644 "$KEY_TMP" "$ETC_DIR/update.pub"
  chown root:root "$ETC_DIR/update.pub"
  rm -f "$KEY_TMP"
}

# Into folders root owns, and /etc/secbox (the daemon may create files there,
# so the temporary file is made by mktemp, which follows no link and fails on
# any name that exists; the sticky bit keeps the daemon from replacing it;
# the rename replaces a link at the destination instead of following it).
install_file() { # mode source destination
  if [ -f "$3" ] && [ ! -L "$3" ] && cmp -s "$2" "$3"; then
    chmod "$1" "$3"
    return 0
  fi
  mkdir -p "$(dirname "$3")"
  tmp=$(mktemp "$(dirname "$3")/.install.XXXXXX")
  cp "$2" "$tmp"
  chmod "$1" "$tmp"
  mv -f "$tmp" "$3"
  say "installed $3"
  CHANGED=1
}

# Also with --root: the embedded database in the root runs as this user.
# The guard app's files, served by the LAN server from the version's own
# folder (versions/<v>/web): the daemon and its app switch and roll back
# together. Made there as secbox, like the rest of the versions tree.
install_web() {
  if [ -z "$WEB_SRC" ]; then
    say "no --web DIR: the guard app is not installed (the LAN API still works)"
    return 0
  fi
  # The source folder (web/ with its package.json) is built first: the app
  # plus hls.js, never node_modules or the package files.
  if [ -f "$WEB_SRC/package.json" ] && [ -x "$WEB_SRC/../scripts/build-web" ]; then
    command -v npm >/dev/null || fail "npm is needed to build the guard app from $WEB_SRC (or pass --web with a built one)"
    web_built=$(mktemp -d)
    "$WEB_SRC/../scripts/build-web" "$web_built" >/dev/null || fail "the guard app could not be built (scripts/build-web)"
    WEB_SRC=$web_built
  fi
  [ -f "$WEB_SRC/index.html" ] || fail "$WEB_SRC has no index.html: not the guard app's files"
  web="$VERSIONS_DIR/versions/$VERSION/web"
  daemon_dir "$web"
  for d in $(cd "$WEB_SRC" && find . -mindepth 1 -type d ! -path './node_modules*' | sort); do
    daemon_dir "$web/${d#./}"
  done
  for f in $(cd "$WEB_SRC" && find . -type f ! -path './node_modules/*' ! -name 'package*.json' | sort); do
    daemon_file 644 "$WEB_SRC/$f" "$web/${f#./}"
  done
  [ -n "${web_built:-}" ] && rm -rf "$web_built"
  # Where installs before bundles put it.
  if [ -d "$ROOT$PREFIX/share/secbox/web" ]; then remove_path "$ROOT$PREFIX/share/secbox"; fi
  return 0
}

# The daemon's ledger (its counter, the versions rolled back), read as the
# daemon's user: root never reads a file the daemon can write by path (a
# link there would lead root's read anywhere). Nothing before the first
# install (no ledger, no user yet).
box_ledger() {
  [ -e "$VERSIONS_DIR/update.ledger" ] || [ -L "$VERSIONS_DIR/update.ledger" ] || return 0
  getent passwd secbox >/dev/null || return 0
  as_secbox head -c 16384 "$VERSIONS_DIR/update.ledger" 2>/dev/null || true
}
box_counter() {
  n=$(box_ledger | sed -n 's/^COUNTER=\([0-9]\{1,18\}\)$/\1/p' | head -n 1)
  printf '%s' "${n:-0}"
}

# The release's manifest beside its version, and its counter as the box's
# (a fresh install is its own known-good version). The counter never goes down.
install_release_record() {
  [ -n "$RELEASE_COUNTER" ] || return 0
  daemon_file 644 "$RELEASE_MANIFEST" "$VERSIONS_DIR/versions/$VERSION/manifest.json"
  [ "$RELEASE_COUNTER" -gt "$(box_counter)" ] || return 0
  ledger=$(mktemp)
  printf 'COUNTER=%s\n' "$RELEASE_COUNTER" >"$ledger"
  box_ledger | grep '^ROLLED_BACK=' >>"$ledger" || true
  chmod 0644 "$ledger"
  daemon_file 644 "$ledger" "$VERSIONS_DIR/update.ledger"
  rm -f "$ledger"
}

ensure_user() {
  if ! getent passwd secbox >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/secbox --no-create-home --shell /usr/sbin/nologin secbox
    say "created the system user secbox"
    CHANGED=1
  fi
  # The compose restarts of cloud control run rootless podman as this user.
  if getent group video >/dev/null && ! id -nG secbox | grep -qw video; then
    usermod -a -G video secbox
    say "added secbox to the video group (webcams)"
    CHANGED=1
  fi
}

# The containers' own user: rootless podman runs the box's containers as
# secbox-runtime, in a user namespace of 65536 subordinate ids, so a
# container (even --privileged, even a compromised daemon's) is never root
# on the box (docs/security.md).
ensure_runtime_user() {
  if ! getent passwd secbox-runtime >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/secbox-runtime --no-create-home --shell /usr/sbin/nologin \
      secbox-runtime
    say "created the system user secbox-runtime (the containers' runtime)"
    CHANGED=1
  fi
  for f in subuid subgid; do
    if ! grep -q '^secbox-runtime:' "/etc/$f" 2>/dev/null; then
      start=$(awk -F: 'BEGIN { m = 100000 } $2 + $3 > m { m = $2 + $3 } END { print m }' "/etc/$f" 2>/dev/null || echo 100000)
      printf 'secbox-runtime:%s:65536\n' "$start" >>"/etc/$f"
      say "gave secbox-runtime the subordinate ids $start-$((start + 65535)) (/etc/$f)"
      CHANGED=1
    fi
  done
}

ensure_dir() { # mode owner directory
  if [ ! -d "$3" ]; then
    mkdir -p "$3"
    say "created $3"
    CHANGED=1
  fi
  if [ "$(stat -c %a "$3")" != "$1" ]; then
    chmod "$1" "$3"
    CHANGED=1
  fi
  if [ "$(stat -c %U:%G "$3")" != "$2" ]; then
    chown "$2" "$3"
    CHANGED=1
  fi
}

# /etc/secbox: the daemon writes secbox.env there (pairing, env.set), so its
# group may create files; the sticky bit keeps it from replacing root's files
# beside it (control.json, tools/), which say what the cloud may do here.
ensure_dirs() {
  ensure_dir 1770 root:secbox "$ETC_DIR"
  ensure_dir 755 root:root "$ETC_DIR/tools"
  ensure_dir 700 secbox:secbox "$STATE_DIR"
  # The compose projects: the daemon's (it writes the files), read by the
  # container runtime's user through the group (set-group-id: every project
  # folder and what the compose tool makes in it has that group).
  ensure_dir 700 secbox-runtime:secbox-runtime "$RUNTIME_HOME"
  ensure_dir 2750 secbox:secbox-runtime "$COMPOSE_DIR"
}

# Node control (cloud-protocol §7.5): read-only operations by default. An
# existing control.json is the site's choice and is never touched.
default_control() {
  cat <<'EOF'
{
  "metrics": {"allow": ["get"]},
  "containers": {"allow": ["list"]},
  "units": {"allow": ["status"]},
  "journal": {"allow": ["tail"], "names": ["secbox.service"]},
  "jwt": {"allow": ["rotate"]}
}
EOF
}

install_control() {
  [ -e "$ETC_DIR/control.json" ] && return 0
  control_tmp=$(mktemp)
  default_control >"$control_tmp"
  install_file 640 "$control_tmp" "$ETC_DIR/control.json"
  chown root:secbox "$ETC_DIR/control.json"
  rm -f "$control_tmp"
}

# /etc/secbox/cloud: the one cloud the pairing form pairs with. root's, in
# the sticky folder: the daemon reads it and cannot replace it. Kept when no
# cloud is given; replaced, and said so, when another one is.
install_cloud_pin() {
  pin="$ETC_DIR/cloud"
  if [ -z "$CLOUD_URL" ]; then
    if [ -f "$pin" ]; then return 0; fi
    say "warning: no --cloud URL: this box pairs with no cloud until the installer runs again with --cloud"
    return 0
  fi
  url=$(printf '%s' "$CLOUD_URL" | sed 's:/*$::')
  if [ -f "$pin" ]; then
    old=$(grep -v '^[[:space:]]*#' "$pin" | grep -v '^[[:space:]]*$' | head -1 || true)
    if [ "$old" != "$url" ]; then say "the allowed cloud changes from ${old:-none} to $url"; fi
  fi
  pin_tmp=$(mktemp)
  printf '# The one cloud this box pairs with (install.sh --cloud; docs/install.md).\n%s\n' "$url" >"$pin_tmp"
  install_file 644 "$pin_tmp" "$pin"
  chown root:root "$pin"
  rm -f "$pin_tmp"
}

# secbox.env must be the daemon's own to be rewritten atomically in a sticky
# folder; an existing one is only reported, never changed.
check_env_owner() {
  [ -f "$ETC_DIR/secbox.env" ] || return 0
  if [ "$(stat -c %U "$ETC_DIR/secbox.env")" != secbox ]; then
    say "warning: $ETC_DIR/secbox.env is not owned by secbox: pairing again and env.set will fail (chown secbox:secbox it)"
  fi
  as_secbox test -r "$ETC_DIR/secbox.env" ||
    fail "$ETC_DIR/secbox.env cannot be read by secbox, so neither the daemon nor its database can start: chown secbox:secbox it"
}

# The embedded PostgreSQL cluster and its schema (secbox migrate is
# idempotent), made by the daemon's user: root never runs the daemon's file.
init_database() {
  if [ -d "$STATE_DIR/pg/data" ] && [ -f "$STATE_DIR/pg/data/PG_VERSION" ]; then
    as_secbox env SECBOX_ETC_DIR="$ETC_DIR" SECBOX_STATE_DIR="$STATE_DIR" SECBOX_LOG_LEVEL=error "$CURRENT_BIN" migrate >/dev/null ||
      fail "the embedded database did not migrate; see: SECBOX_STATE_DIR=$STATE_DIR $BIN_PATH doctor"
    return 0
  fi
  say "creating the embedded database in $STATE_DIR/pg"
  as_secbox env SECBOX_ETC_DIR="$ETC_DIR" SECBOX_STATE_DIR="$STATE_DIR" SECBOX_LOG_LEVEL=error "$CURRENT_BIN" migrate ||
    fail "the embedded database could not be created"
  CHANGED=1
}

# The unit: Type=notify with a watchdog the daemon feeds from its event loop,
# restart on failure, and a sandbox (see docs/install.md for each choice).
write_unit() {
  cat <<EOF
# Installed by install.sh; changes here are replaced by the next install.
[Unit]
Description=SecBox edge security appliance
Documentation=file://$PREFIX/share/doc/secbox
After=network-online.target secbox-runtime.socket
Wants=network-online.target secbox-runtime.socket
StartLimitIntervalSec=10min
StartLimitBurst=20
# Failed for good (the start limit): back to the known-good version and env.
OnFailure=secbox-recover.service

[Service]
Type=notify
NotifyAccess=main
# Root's, not the sandbox's, and no version's code: counts the starts of a
# version on trial and rolls it back (docs/updates.md).
ExecStartPre=+$PREFIX/lib/secbox-recover --versions $PREFIX/lib/secbox pre-start
ExecStart=$PREFIX/lib/secbox/current/secbox run
User=secbox
Group=secbox
# video: webcams; systemd-journal: journal.tail (cloud-protocol 7.5).
SupplementaryGroups=video systemd-journal
Environment=SECBOX_ETC_DIR=/etc/secbox SECBOX_STATE_DIR=/var/lib/secbox
Environment=SECBOX_VERSIONS_DIR=$PREFIX/lib/secbox
# The containers' rootless podman, through its socket (install_runtime).
Environment=CONTAINER_HOST=unix:///run/secbox-runtime.sock SECBOX_COMPOSE_DIR=/var/lib/secbox-compose
WatchdogSec=30s
Restart=on-failure
RestartSec=5s
# 75: an update switched the current version; start it.
RestartForceExitStatus=75
SuccessExitStatus=75
TimeoutStartSec=2min
TimeoutStopSec=15s
KillMode=mixed
UMask=0077

# Sandbox: read-only system, its own two folders writable.
ProtectSystem=strict
ReadWritePaths=/etc/secbox /var/lib/secbox $PREFIX/lib/secbox /var/lib/secbox-compose
ProtectHome=yes
PrivateTmp=yes
PrivateMounts=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
$(kernel_sandbox)
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallFilter=~@privileged
DevicePolicy=closed
DeviceAllow=char-video4linux rw
KeyringMode=private
RemoveIPC=yes

[Install]
WantedBy=multi-user.target
EOF
}

# What the daemon's unit and the small helpers' share: the kernel, the
# clock, the host name, namespaces, set-uid files, realtime, personality,
# writable code, and system calls beyond a service's.
kernel_sandbox() {
  cat <<EOF
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
EOF
}

# The sandbox of the small helpers that run outside the daemon: they read
# and write a few folders, talk to systemd over its socket, and need nothing
# else (docs/security.md).
root_helper_sandbox() { # writable-paths capabilities
  cat <<EOF
ProtectSystem=strict
ReadWritePaths=$1
ProtectHome=yes
PrivateTmp=yes
PrivateNetwork=yes
PrivateDevices=yes
NoNewPrivileges=yes
CapabilityBoundingSet=$2
$(kernel_sandbox)
RestrictAddressFamilies=AF_UNIX
UMask=0022
EOF
}

# secbox-recover, run by systemd: once secbox.service has failed for good,
# and every 30 s for a version on trial that runs but never passes.
write_recover_units() { # which
  case "$1" in
    failed)
      cat <<EOF
# Installed by install.sh; changes here are replaced by the next install.
[Unit]
Description=SecBox recovery: the known-good version after secbox.service failed
Documentation=file://$PREFIX/share/doc/secbox

[Service]
Type=oneshot
ExecStart=$PREFIX/lib/secbox-recover --versions $PREFIX/lib/secbox failed
$(root_helper_sandbox "/etc/secbox /var/lib/secbox $PREFIX/lib/secbox" "CAP_SETUID CAP_SETGID")
EOF
      ;;
    check)
      cat <<EOF
# Installed by install.sh; changes here are replaced by the next install.
[Unit]
Description=SecBox recovery: a version on trial that does not pass in time

[Service]
Type=oneshot
ExecStart=$PREFIX/lib/secbox-recover --versions $PREFIX/lib/secbox check
$(root_helper_sandbox "/etc/secbox /var/lib/secbox $PREFIX/lib/secbox" "CAP_SETUID CAP_SETGID")
EOF
      ;;
    polkit-path)
      cat <<'EOF'
# Installed by install.sh; changes here are replaced by the next install.
[Unit]
Description=SecBox: the polkit rule follows control.json

[Path]
PathChanged=/etc/secbox/control.json
Unit=secbox-polkit.service

[Install]
WantedBy=paths.target
EOF
      ;;
    polkit-service)
      cat <<EOF
# Installed by install.sh; changes here are replaced by the next install.
[Unit]
Description=SecBox: the polkit rule for units.restart, from control.json

[Service]
Type=oneshot
ExecStart=$PREFIX/lib/secbox-polkit-sync /etc/secbox/control.json /etc/polkit-1/rules.d/50-secbox.rules
# Not root: polkitd owns its rules folder, and the secbox group may read
# control.json (which the script trusts only while root owns it).
User=polkitd
SupplementaryGroups=secbox
$(root_helper_sandbox "-/etc/polkit-1/rules.d" "")
EOF
      ;;
    timer)
      cat <<'EOF'
# Installed by install.sh; changes here are replaced by the next install.
[Unit]
Description=SecBox recovery check, every 30 s

[Timer]
OnActiveSec=30s
OnUnitActiveSec=30s
AccuracySec=5s

[Install]
WantedBy=timers.target
EOF
      ;;
  esac
}

install_unit() {
  unit_tmp=$(mktemp)
  write_unit >"$unit_tmp"
  install_file 644 "$unit_tmp" "$UNIT_PATH"
  for which in failed check timer polkit-path polkit-service; do
    write_recover_units "$which" >"$unit_tmp"
    case "$which" in
      failed) install_file 644 "$unit_tmp" "$ROOT/etc/systemd/system/secbox-recover.service" ;;
      check) install_file 644 "$unit_tmp" "$ROOT/etc/systemd/system/secbox-recover-check.service" ;;
      timer) install_file 644 "$unit_tmp" "$ROOT/etc/systemd/system/secbox-recover-check.timer" ;;
      polkit-path) install_file 644 "$unit_tmp" "$ROOT/etc/systemd/system/secbox-polkit.path" ;;
      polkit-service) install_file 644 "$unit_tmp" "$ROOT/etc/systemd/system/secbox-polkit.service" ;;
    esac
  done
  rm -f "$unit_tmp"
}

start_service() {
  if ! systemd_running; then
    say "systemd is not running here: start SecBox with \`$PREFIX/bin/secbox run\` (as root or secbox)"
    return 0
  fi
  systemctl daemon-reload
  if [ "${RESTART_ROOT_PODMAN:-0}" -eq 1 ] && [ -f /lib/systemd/system/podman.socket ]; then
    # Made again without the secbox group.
    systemctl restart podman.socket
  fi
  systemctl enable --quiet secbox-runtime.socket
  systemctl start secbox-runtime.socket
  if ! systemctl is-enabled --quiet secbox.service 2>/dev/null; then
    systemctl enable --quiet secbox.service
    CHANGED=1
  fi
  if ! systemctl is-active --quiet secbox-recover-check.timer 2>/dev/null; then
    systemctl enable --now --quiet secbox-recover-check.timer
  fi
  if ! systemctl is-active --quiet secbox-polkit.path 2>/dev/null; then
    systemctl enable --now --quiet secbox-polkit.path
  fi
  if [ "$CHANGED" -eq 1 ] || ! systemctl is-active --quiet secbox.service; then
    systemctl restart secbox.service
    say "started secbox.service"
  fi
}

# The box's containers run under rootless podman as secbox-runtime: a
# socket PID 1 makes (the secbox group may connect, nobody else) activates
# `podman system service` as that user. The daemon keeps its sandbox (no
# user namespaces, no set-uid helpers), the containers do not inherit it,
# and neither the daemon nor any compose file can reach root through the
# runtime. Frigate's devices are the site's to allow (control.json) and the
# runtime user's to open (docs/security.md).
write_runtime_units() { # socket|service
  case "$1" in
    socket)
      cat <<'EOF'
# Installed by install.sh; changes here are replaced by the next install.
[Unit]
Description=SecBox container runtime: the API socket the daemon drives

[Socket]
ListenStream=/run/secbox-runtime.sock
SocketUser=secbox-runtime
SocketGroup=secbox
SocketMode=0660

[Install]
WantedBy=sockets.target
EOF
      ;;
    service)
      cat <<'EOF'
# Installed by install.sh; changes here are replaced by the next install.
[Unit]
Description=SecBox container runtime: rootless podman as secbox-runtime
Requires=secbox-runtime.socket
After=secbox-runtime.socket

[Service]
Type=exec
User=secbox-runtime
Group=secbox-runtime
# Its runtime state outlives a restart of the API service, as its
# containers do (KillMode=process: conmon and the containers stay).
RuntimeDirectory=secbox-runtime
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
Environment=XDG_RUNTIME_DIR=/run/secbox-runtime HOME=/var/lib/secbox-runtime
WorkingDirectory=/var/lib/secbox-runtime
ExecStart=/usr/bin/podman system service --time=0
KillMode=process
Delegate=yes
TimeoutStopSec=15s
# What rootless podman leaves to sandbox (docs/security.md says why the rest
# stays open). A set-uid program it runs gets no capability beyond what the
# set-uid newuidmap/newgidmap need to write another process's id maps
# (CAP_SETUID/SETGID, CAP_DAC_OVERRIDE to open the map, CAP_SYS_ADMIN over
# the new namespace: checked by hand). No option that installs a seccomp
# filter: for a User= service systemd then implies NoNewPrivileges, and the
# set-uid newuidmap fails.
CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_DAC_OVERRIDE CAP_SYS_ADMIN
AmbientCapabilities=
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
KeyringMode=private
UMask=0027
EOF
      ;;
  esac
}

install_runtime() {
  unit_tmp=$(mktemp)
  write_runtime_units socket >"$unit_tmp"
  install_file 644 "$unit_tmp" "$ROOT/etc/systemd/system/secbox-runtime.socket"
  write_runtime_units service >"$unit_tmp"
  install_file 644 "$unit_tmp" "$ROOT/etc/systemd/system/secbox-runtime.service"
  rm -f "$unit_tmp"
  # Earlier installs gave the secbox group root's podman socket: no more.
  if [ -e "$ROOT/etc/systemd/system/podman.socket.d/secbox.conf" ]; then
    remove_path "$ROOT/etc/systemd/system/podman.socket.d/secbox.conf"
    rmdir "$ROOT/etc/systemd/system/podman.socket.d" 2>/dev/null || true
    RESTART_ROOT_PODMAN=1
  fi
  # Projects of earlier installs are left where they are: their folders are
  # not the runtime's group's, and fixing that would have root change what
  # the daemon owns. Their containers run under root's podman until the
  # site moves them.
  if [ -d "$STATE_DIR/compose" ] && [ -n "$(ls -A "$STATE_DIR/compose" 2>/dev/null)" ]; then
    say "warning: compose projects from before the rootless runtime are in $STATE_DIR/compose and their containers run under root's podman: send compose.snapshot again for each (the new containers run rootless, from $COMPOSE_DIR), then remove the old ones as root (podman-compose -p PROJECT -f FILE down)"
  fi
}

# units.restart (cloud-protocol 7.5): polkit lets the secbox user restart
# exactly the units that control.json's "units" section names, when it allows
# "restart". The rule is written by secbox-polkit-sync (root's), at install
# and again by secbox-polkit.path whenever control.json changes, so the one
# narrow privilege never drifts from the file that grants it.
write_polkit_sync() {
  cat <<'SYNC'
#!/bin/sh
# secbox-polkit-sync CONTROL_JSON RULE (installed by install.sh, root's): the
# polkit rule that lets the secbox user restart exactly the units
# control.json's "units" section names when it allows "restart"; no names,
# no rule. Run at install and by secbox-polkit.path when control.json
# changes. control.json is trusted only while it is root's and not a link
# (/etc/secbox is the daemon's group's to create files in).
set -eu
control=$1
rule=$2
names=""
if [ -f "$control" ] && [ ! -L "$control" ] && [ "$(stat -c %u "$control")" -eq 0 ] &&
  command -v python3 >/dev/null; then
  names=$(python3 - "$control" <<'EOF' 2>/dev/null || true
import json, re, sys
try:
    units = json.load(open(sys.argv[1])).get("units", {})
except Exception:
    sys.exit(0)
if "restart" in units.get("allow", []):
    for n in units.get("names", []):
        if isinstance(n, str) and re.fullmatch(r"[A-Za-z0-9:_.@-]{1,200}", n) and not n.startswith("-"):
            print('"%s"' % n)
EOF
)
fi
names=$(printf '%s\n' "$names" | grep -v '^$' | paste -sd, - || true)
if [ -z "$names" ]; then
  rm -f "$rule"
  exit 0
fi
mkdir -p "$(dirname "$rule")"
tmp=$(mktemp "$(dirname "$rule")/.secbox-rule.XXXXXX")
cat >"$tmp" <<EOF
// Written by secbox-polkit-sync from /etc/secbox/control.json ("units"): the
// SecBox daemon may restart these units and no others.
polkit.addRule(function(action, subject) {
  if (action.id == "org.freedesktop.systemd1.manage-units" && subject.user == "secbox" &&
      action.lookup("verb") == "restart" && [$names].indexOf(action.lookup("unit")) >= 0) {
    return polkit.Result.YES;
  }
});
EOF
chmod 0644 "$tmp"
if cmp -s "$tmp" "$rule"; then rm -f "$tmp"; else mv -f "$tmp" "$rule"; fi
SYNC
}

install_polkit_rule() {
  sync="$ROOT$PREFIX/lib/secbox-polkit-sync"
  sync_tmp=$(mktemp)
  write_polkit_sync >"$sync_tmp"
  install_file 755 "$sync_tmp" "$sync"
  rm -f "$sync_tmp"
  rule="$ROOT/etc/polkit-1/rules.d/50-secbox.rules"
  before=$(cat "$rule" 2>/dev/null || true)
  "$sync" "$ETC_DIR/control.json" "$rule" || fail "could not write the polkit rule $rule"
  if [ "$before" != "$(cat "$rule" 2>/dev/null || true)" ]; then
    say "wrote the polkit rule $rule"
    CHANGED=1
  fi
}

lan_addresses() {
  hostname -I 2>/dev/null | tr ' ' '\n' | grep -v '^$' | grep -v '^fe80' || true
}

print_next_step() {
  port=8080
  if [ -f "$ETC_DIR/secbox.env" ]; then
    if grep -q '^DEVICE_ID=.' "$ETC_DIR/secbox.env"; then
      say "this box is paired (DEVICE_ID is set in $ETC_DIR/secbox.env)"
      return 0
    fi
    configured=$(sed -n 's/^PAIRING_PORT=//p' "$ETC_DIR/secbox.env" | tail -1)
    port=${configured:-8080}
  fi
  say "pair this box: open one of these from a phone or laptop on the booth's network"
  for a in $(lan_addresses); do
    case "$a" in *:*) printf '  http://[%s]:%s/\n' "$a" "$port" ;; *) printf '  http://%s:%s/\n' "$a" "$port" ;; esac
  done
  printf '  http://%s.local:%s/\n' "$(hostname)" "$port"
}

do_install() {
  check_system
  no_default_cluster
  install_packages
  report_default_cluster
  update_key
  obtain_binary
  ensure_user
  ensure_runtime_user
  install_versions
  install_web
  install_release_record
  [ -z "${UNPACKED:-}" ] || rm -rf "$UNPACKED"
  ensure_dirs
  install_update_key
  install_control
  install_cloud_pin
  install_runtime
  install_polkit_rule
  # An existing secbox.env is the box's pairing: never touched here.
  check_env_owner
  init_database
  [ -z "${DOWNLOAD_DIR:-}" ] || rm -rf "$DOWNLOAD_DIR"
  install_unit
  start_service
  if [ "$CHANGED" -eq 0 ]; then
    say "nothing to change: SecBox is already installed as asked"
  else
    say "SecBox is installed"
  fi
  print_next_step
}

# -------------------------------------------------------------- uninstall --

remove_path() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    rm -rf "$1"
    say "removed $1"
    CHANGED=1
  fi
}

do_uninstall() {
  check_system
  if systemd_running && [ -f "$UNIT_PATH" ]; then
    systemctl disable --now --quiet secbox-recover-check.timer || true
    systemctl disable --now --quiet secbox-polkit.path || true
    systemctl disable --now --quiet secbox-runtime.socket secbox-runtime.service || true
    systemctl disable --now --quiet secbox.service || true
  fi
  remove_path "$UNIT_PATH"
  remove_path "$ROOT/etc/systemd/system/secbox-recover.service"
  remove_path "$ROOT/etc/systemd/system/secbox-recover-check.service"
  remove_path "$ROOT/etc/systemd/system/secbox-recover-check.timer"
  remove_path "$ROOT/etc/systemd/system/secbox-polkit.path"
  remove_path "$ROOT/etc/systemd/system/secbox-polkit.service"
  remove_path "$ROOT$PREFIX/lib/secbox-polkit-sync"
  remove_path "$ROOT/etc/systemd/system/podman.socket.d/secbox.conf"
  remove_path "$ROOT/etc/systemd/system/secbox-runtime.socket"
  remove_path "$ROOT/etc/systemd/system/secbox-runtime.service"
  remove_path "$ROOT/etc/polkit-1/rules.d/50-secbox.rules"
  if systemd_running; then
    systemctl daemon-reload
    if [ -f /lib/systemd/system/podman.socket ]; then systemctl restart podman.socket; fi
  fi
  # The embedded cluster stops with the service; stop one left running anyway.
  if [ -f "$STATE_DIR/pg/data/postmaster.pid" ] && [ -x "$BIN_PATH" ]; then
    pkill -TERM -f "postgres -D $STATE_DIR/pg/data" 2>/dev/null || true
  fi
  remove_path "$BIN_PATH"
  remove_path "$VERSIONS_DIR"
  remove_path "$RECOVER_PATH"
  remove_path "$ROOT$PREFIX/share/secbox"
  if [ "$PURGE" -eq 1 ]; then
    remove_path "$ETC_DIR"
    remove_path "$STATE_DIR"
    remove_path "$COMPOSE_DIR"
    remove_path "$ROOT/etc/postgresql-common/createcluster.d/secbox.conf"
    if [ -z "$ROOT" ] && getent passwd secbox >/dev/null; then
      # Nothing of the box may outlive it: any process left as secbox.
      pkill -KILL -u secbox 2>/dev/null || true
      userdel secbox
      say "removed the system user secbox"
    fi
    if [ -z "$ROOT" ] && getent passwd secbox-runtime >/dev/null; then
      # Its containers and their storage go with it.
      pkill -KILL -u secbox-runtime 2>/dev/null || true
      userdel secbox-runtime
      sed -i '/^secbox-runtime:/d' /etc/subuid /etc/subgid 2>/dev/null || true
      say "removed the system user secbox-runtime and its containers"
    fi
    remove_path "$RUNTIME_HOME"
  else
    say "kept $ETC_DIR and $STATE_DIR (the pairing and the data); --purge removes them"
  fi
  [ "$CHANGED" -eq 1 ] || say "nothing to remove"
}

main() {
  init_settings
  parse_args "$@"
  case "$ACTION" in
    install) do_install ;;
    uninstall) do_uninstall ;;
  esac
}

main "$@"
