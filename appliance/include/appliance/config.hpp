#pragma once
// The box's settings. They come from secbox.env; a key absent from the file
// falls back to the process environment. The file wins because under systemd
// the process environment holds the file as it was at start, and SIGHUP must
// see the file as it is now. SECBOX_ETC_DIR and SECBOX_STATE_DIR (which locate
// the file) come from the process environment only.
//
// Loading registers every secret value with the log redaction. Value type;
// load_config() reads a file (blocking, but small: used at start and from the
// worker pool on SIGHUP).
#include <map>
#include <string>

#include "common/result.hpp"
#include "common/url.hpp"
#include "envfile/env_file.hpp"

namespace secbox::appliance {

struct Paths {
  std::string etc_dir = "/etc/secbox";
  std::string state_dir = "/var/lib/secbox";

  std::string env_file() const { return etc_dir + "/secbox.env"; }
  std::string legacy_env_file() const { return etc_dir + "/mgmt-agent.env"; }
  std::string jwt_file() const { return state_dir + "/device.jwt"; }
  std::string tools_dir() const { return etc_dir + "/tools"; }
  std::string control_file() const { return etc_dir + "/control.json"; }
  std::string cloud_pin_file() const { return etc_dir + "/cloud"; }  // install.sh --cloud
  // SECBOX_COMPOSE_DIR: the projects' folders, which the container runtime's
  // own user must reach (install.sh: /var/lib/secbox-compose).
  std::string compose_root;
  std::string compose_dir() const {
    return compose_root.empty() ? state_dir + "/compose" : compose_root;
  }
  std::string cameras_dir() const { return etc_dir + "/cameras"; }
  std::string hls_dir() const { return state_dir + "/hls"; }
  std::string pg_dir() const { return state_dir + "/pg"; }
};

struct Config {
  Paths paths;
  bool env_file_present = false;

  // Pairing (cloud-protocol §1): both required once paired.
  std::string device_id;
  std::string cloud_base_url;
  std::string device_gateway_url;
  bool has_bootstrap = false;  // the token itself is read where it is used
  // The cloud the installer pinned (etc/cloud), and why it could not be read
  // (a bad pin does not stop the box: pairing refuses, the rest runs).
  std::string pinned_cloud;
  std::string cloud_pin_error;

  std::string database_url;  // empty: the embedded cluster in state_dir/pg
  std::string pg_bin_dir;    // embedded cluster: PostgreSQL's bin dir (auto)
  std::string pg_user;       // embedded cluster: its OS user when we are root (auto)
  std::string frigate_url = "http://127.0.0.1:5000";
  // ALARM_MIN_SCORE: a camera's plate read (or face) below it raises no ban
  // alarm; a percentage, 1 to 100.
  int alarm_min_score_pct = 80;
  std::string cloud_ca_file;
  // Roots a LAN certificate from the cloud may chain to besides the system's
  // (cloud-protocol §7.7; a test ACME server's). Empty: the system's only.
  std::string lan_cert_roots_file;
  // The addresses guards reach the box at (comma-separated), as the pairing
  // page, /api/lan/status and `secbox doctor` give them; empty: the
  // addresses of its interfaces (common/net.hpp lan_addresses).
  std::string lan_addresses;
  std::vector<std::string> guard_addresses() const;
  // Cloud control (docs/control.md). Commands are split on blanks, never
  // given to a shell.
  std::string compose_cmd = "podman-compose";
  std::string compose_user;  // runs compose and owns secbox.env; empty: the daemon's user
  int compose_up_timeout_s = 300;
  int compose_health_timeout_s = 120;
  bool compose_render_check = true;
  std::string container_cmd = "podman";
  std::string container_host;  // CONTAINER_HOST: unix:///… podman API socket; empty: podman's own
  std::string systemctl_cmd = "systemctl";
  std::string journalctl_cmd = "journalctl";
  std::string health_disks;        // blank-separated paths; empty: / and the state dir
  std::string network_interfaces;  // blank-separated; empty: every one but lo
  int health_interval_s = 60;
  int lan_port = 8443;
  int lan_cert_check_s = 6 * 3600;  // how often the LAN certificate is checked for renewal
  // Who may read /metrics on the LAN port (docs/metrics.md): clients from
  // these addresses or blocks, and any client with this bearer token.
  std::string metrics_allow = "127.0.0.1,::1";
  std::string metrics_token;
  std::string
      web_dir;  // LAN_WEB_DIR: the guard app's built files; "": web/ beside the running binary
  int pairing_port = 8080;
  // Software updates (docs/updates.md). SECBOX_VERSIONS_DIR: the versions
  // tree; empty: the one this binary runs from (<dir>/versions/<v>/secbox),
  // if it does. UPDATE_KEY_FILE: the key install.sh pinned.
  std::string versions_dir;
  std::string update_key_file;  // default <etc>/update.pub
  int update_trial_s = 120;     // cloud-protocol §7.6
  int update_deadline_s = 300;

  bool development = false;  // SECBOX_ENV=development: human-readable logs
  std::string log_level = "info";

  bool paired() const { return !device_id.empty() && !cloud_base_url.empty(); }
  // The one cloud the pairing form pairs with: the pin, else (a box installed
  // before pins) the cloud it is paired with; "" when there is none or the
  // pin is unreadable.
  std::string allowed_cloud() const {
    if (!cloud_pin_error.empty()) return "";
    return pinned_cloud.empty() ? cloud_base_url : pinned_cloud;
  }
};

// The pin file's text: one https URL (http only for a loopback host) on a line
// of its own; blank lines and '#' comments around it.
Result<std::string> parse_cloud_pin(const std::string& text);

using Environment = std::map<std::string, std::string>;

Environment process_environment();

// The keys (secbox.env names) whose values differ between two
// configurations, in a stable order; secrets compare without being shown.
std::vector<std::string> changed_keys(const Config& before, const Config& after);
// The addresses LAN_ADDRESSES names, or the interfaces' when it is empty.
std::vector<std::string> guard_addresses(const std::string& setting);

// Whether a running box applies a change of this key at once (logging,
// cloud control) or only at its next start (ports, URLs the components were
// built with, the database).
bool applies_without_restart(const std::string& key);

// The daemon's own settings (every key load_config reads, and every SECBOX_*):
// the cloud may change one with env.set only where control.json names it.
bool is_daemon_setting(const std::string& key);

// Copies one setting's value(s) from `from` into `to` (a running box taking a
// key that applies without restart).
void apply_setting(const std::string& key, const Config& from, Config& to);

// All of these derive from one table of settings in config.cpp: a new
// setting is one row there (and its member in Config).

// Error code "config"; the message names the key and the file (or "the
// environment"), and never a value.
Result<Config> load_config(const Environment& process_env);

using secbox::is_loopback_url;

}  // namespace secbox::appliance
