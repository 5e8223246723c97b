#include "appliance/config.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <regex>

#include "common/atomic_file.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/url.hpp"

extern char** environ;

namespace secbox::appliance {
namespace {

// Keys whose values are not secret: everything else read from the env file
// is registered with the log redaction.
bool is_public_key(const std::string& key) {
  static const char* const kPublic[] = {
      "DEVICE_ID",  "CLOUD_BASE_URL", "DEVICE_GATEWAY_URL", "FRIGATE_URL",     "CLOUD_CA_FILE", "ALARM_MIN_SCORE",
      "COMPOSE_CMD", "COMPOSE_USER", "COMPOSE_UP_TIMEOUT_S", "COMPOSE_HEALTH_TIMEOUT_S", "COMPOSE_RENDER_CHECK",
      "CONTAINER_CMD", "CONTAINER_HOST", "SYSTEMCTL_CMD", "JOURNALCTL_CMD", "HEALTH_DISKS", "HEALTH_INTERVAL_S", "NETWORK_INTERFACES",
      "LAN_PORT", "LAN_WEB_DIR", "LAN_CERT_CHECK_S", "LAN_CERT_ROOTS_FILE", "LAN_ADDRESSES", "PAIRING_PORT",       "SECBOX_ENV",      "SECBOX_LOG_LEVEL",
      "SECBOX_PG_BIN_DIR", "SECBOX_PG_USER", "SECBOX_VERSIONS_DIR", "UPDATE_KEY_FILE", "SECBOX_UPDATE_TRIAL_S",
      "SECBOX_UPDATE_DEADLINE_S", "METRICS_ALLOW"};
  return std::find(std::begin(kPublic), std::end(kPublic), key) != std::end(kPublic);
}

struct Source {
  const envfile::EnvFile& file;
  const Environment& env;
  const std::string& file_path;

  // The value and where it came from, for error messages.
  std::optional<std::pair<std::string, std::string>> get(const std::string& key) const {
    if (auto v = file.get(key)) return std::make_pair(*v, file_path);
    if (auto it = env.find(key); it != env.end()) return std::make_pair(it->second, "the environment");
    return std::nullopt;
  }
};

Error bad(const std::string& key, const std::string& where, const std::string& what) {
  return Error{Errc::config, key + " in " + where + " " + what};
}

Result<void> read_url(const Source& src, const std::string& key, const char* secure,
                      const char* insecure, std::string& out) {
  auto v = src.get(key);
  if (!v || v->first.empty()) return ok();
  const std::string scheme = url_scheme(v->first);
  if (url_host(v->first).empty()) return bad(key, v->second, "is not a URL with a host");
  if (scheme == secure || (scheme == insecure && is_loopback_url(v->first))) {
    out = v->first;
    return ok();
  }
  return bad(key, v->second,
             std::string("must start with ") + secure + "://" +
                 (insecure ? std::string(" (") + insecure + ":// only for a loopback host)" : ""));
}

// 0 asks for any free port (tests run many boxes side by side); the box logs
// the one it got.
Result<void> read_port(const Source& src, const std::string& key, int& out) {
  auto v = src.get(key);
  if (!v) return ok();
  const auto& s = v->first;
  if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), ::isdigit) || std::stoi(s) > 65535) {
    return bad(key, v->second, "must be a port number from 1 to 65535 (or 0 for any free port)");
  }
  out = std::stoi(s);
  return ok();
}

Result<void> read_seconds(const Source& src, const std::string& key, int min, int max, int& out) {
  auto v = src.get(key);
  if (!v || v->first.empty()) return ok();
  const auto& s = v->first;
  if (s.size() > 6 || !std::all_of(s.begin(), s.end(), ::isdigit) || std::stoi(s) < min || std::stoi(s) > max) {
    return bad(key, v->second, "must be a whole number of seconds from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = std::stoi(s);
  return ok();
}

void read_text(const Source& src, const std::string& key, std::string& out) {
  if (auto v = src.get(key); v && !v->first.empty()) out = v->first;
}

}  // namespace

Environment process_environment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

Result<std::string> parse_cloud_pin(const std::string& text) {
  std::string url;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") + 1 - first);
    if (!url.empty()) return Error{Errc::config, "holds more than one URL; it names the one cloud this box pairs with"};
    url = line;
  }
  if (url.empty()) return Error{Errc::config, "holds no URL"};
  for (unsigned char c : url) {
    if (c == '@' || c == '\\' || c <= 0x20 || c == 0x7f) return Error{Errc::config, "holds a URL with '@', '\\' or spaces"};
  }
  const std::string scheme = url_scheme(url);
  if (url_origin(url).empty() || !(scheme == "https" || (scheme == "http" && is_loopback_url(url)))) {
    return Error{Errc::config, "must hold an https:// URL (http:// only for this machine's own address)"};
  }
  while (url.size() > 8 && url.back() == '/') url.pop_back();
  return url;
}

Result<Config> load_config(const Environment& penv) {
  Config c;
  if (auto it = penv.find("SECBOX_ETC_DIR"); it != penv.end() && !it->second.empty()) {
    c.paths.etc_dir = it->second;
  }
  if (auto it = penv.find("SECBOX_STATE_DIR"); it != penv.end() && !it->second.empty()) {
    c.paths.state_dir = it->second;
  }
  if (auto it = penv.find("SECBOX_COMPOSE_DIR"); it != penv.end() && !it->second.empty()) {
    c.paths.compose_root = it->second;
    if (c.paths.compose_root[0] != '/') return Error{Errc::config, "SECBOX_COMPOSE_DIR must be an absolute path"};
    while (c.paths.compose_root.size() > 1 && c.paths.compose_root.back() == '/') c.paths.compose_root.pop_back();
  }
  for (auto* dir : {&c.paths.etc_dir, &c.paths.state_dir}) {
    if (dir->empty() || (*dir)[0] != '/') {
      return Error{Errc::config, "SECBOX_ETC_DIR and SECBOX_STATE_DIR must be absolute paths"};
    }
    while (dir->size() > 1 && dir->back() == '/') dir->pop_back();
  }
  const std::string path = c.paths.env_file();
  envfile::EnvFile file;
  auto loaded = envfile::load(path);
  if (loaded) {
    file = std::move(loaded).value();
    c.env_file_present = true;
  } else if (loaded.error().code != Errc::not_found) {
    return Error{Errc::config, loaded.error().message};
  }
  for (const auto& e : file.entries()) {
    if (!is_public_key(e.key) && e.value.size() >= 6) log::add_secret(e.value);
  }
  const Source src{file, penv, path};

  if (auto v = src.get("DEVICE_ID"); v && !v->first.empty()) {
    static const std::regex kId("^[A-Za-z0-9_-]{3,64}$");
    if (!std::regex_match(v->first, kId)) {
      return bad("DEVICE_ID", v->second, "must be 3 to 64 letters, digits, _ or -");
    }
    c.device_id = v->first;
  }
  if (auto r = read_url(src, "CLOUD_BASE_URL", "https", "http", c.cloud_base_url); !r) {
    return r.error();
  }
  if (auto r = read_url(src, "DEVICE_GATEWAY_URL", "wss", "ws", c.device_gateway_url); !r) {
    return r.error();
  }
  if (auto r = read_url(src, "FRIGATE_URL", "http", "http", c.frigate_url); !r) return r.error();
  if (auto r = read_port(src, "LAN_PORT", c.lan_port); !r) return r.error();
  if (auto v = src.get("LAN_WEB_DIR"); v && !v->first.empty()) c.web_dir = v->first;
  if (auto r = read_port(src, "PAIRING_PORT", c.pairing_port); !r) return r.error();
  if (auto v = src.get("BOOTSTRAP"); v && !v->first.empty()) {
    log::add_secret(v->first);
    c.has_bootstrap = true;
  }
  if (auto v = src.get("DATABASE_URL")) {
    if (!v->first.empty()) log::add_secret(v->first);
    c.database_url = v->first;
  }
  if (auto v = src.get("LAN_ADDRESSES"); v && !v->first.empty()) {
    std::string bad_entry;
    if (!AddressList::parse(v->first, &bad_entry)) {
      return bad("LAN_ADDRESSES", v->second, "\"" + bad_entry + "\" is not an address");
    }
    c.lan_addresses = v->first;
  }
  if (auto v = src.get("LAN_CERT_ROOTS_FILE"); v && !v->first.empty()) {
    if (v->first[0] != '/') return bad("LAN_CERT_ROOTS_FILE", v->second, "must be an absolute path");
    c.lan_cert_roots_file = v->first;
  }
  if (auto v = src.get("CLOUD_CA_FILE"); v && !v->first.empty()) {
    if (v->first[0] != '/') return bad("CLOUD_CA_FILE", v->second, "must be an absolute path");
    c.cloud_ca_file = v->first;
  }
  read_text(src, "COMPOSE_CMD", c.compose_cmd);
  read_text(src, "COMPOSE_USER", c.compose_user);
  read_text(src, "CONTAINER_CMD", c.container_cmd);
  if (auto v = src.get("CONTAINER_HOST"); v && !v->first.empty()) {
    // Only a local socket: the tools must not be pointed at another machine.
    if (v->first.rfind("unix:///", 0) != 0 || v->first.find_first_of(" \t") != std::string::npos) {
      return bad("CONTAINER_HOST", v->second, "must be a unix:/// socket path");
    }
    c.container_host = v->first;
  }
  read_text(src, "SYSTEMCTL_CMD", c.systemctl_cmd);
  read_text(src, "JOURNALCTL_CMD", c.journalctl_cmd);
  read_text(src, "HEALTH_DISKS", c.health_disks);
  read_text(src, "NETWORK_INTERFACES", c.network_interfaces);
  if (auto r = read_seconds(src, "COMPOSE_UP_TIMEOUT_S", 1, 3600, c.compose_up_timeout_s); !r) return r.error();
  if (auto r = read_seconds(src, "COMPOSE_HEALTH_TIMEOUT_S", 1, 3600, c.compose_health_timeout_s); !r) return r.error();
  if (auto r = read_seconds(src, "HEALTH_INTERVAL_S", 1, 3600, c.health_interval_s); !r) return r.error();
  if (auto v = src.get("ALARM_MIN_SCORE"); v && !v->first.empty()) {
    const auto& t = v->first;
    if (t.size() > 3 || !std::all_of(t.begin(), t.end(), ::isdigit) || std::stoi(t) < 1 || std::stoi(t) > 100) {
      return bad("ALARM_MIN_SCORE", v->second, "must be a percentage from 1 to 100 (80: a plate read with a score of 0.8 or more)");
    }
    c.alarm_min_score_pct = std::stoi(t);
  }
  if (auto r = read_seconds(src, "LAN_CERT_CHECK_S", 1, 86400, c.lan_cert_check_s); !r) return r.error();
  if (auto v = src.get("METRICS_ALLOW")) {
    if (!AddressList::parse(v->first)) {
      return bad("METRICS_ALLOW", v->second, "holds an entry that is no address or block (a.b.c.d, a.b.c.d/n, or IPv6)");
    }
    c.metrics_allow = v->first;
  }
  if (auto v = src.get("METRICS_TOKEN"); v && !v->first.empty()) {
    if (v->first.size() < 16) return bad("METRICS_TOKEN", v->second, "must be at least 16 characters");
    c.metrics_token = v->first;
  }
  read_text(src, "SECBOX_VERSIONS_DIR", c.versions_dir);
  c.update_key_file = c.paths.etc_dir + "/update.pub";
  read_text(src, "UPDATE_KEY_FILE", c.update_key_file);
  if (auto r = read_seconds(src, "SECBOX_UPDATE_TRIAL_S", 1, 3600, c.update_trial_s); !r) return r.error();
  if (auto r = read_seconds(src, "SECBOX_UPDATE_DEADLINE_S", 10, 7200, c.update_deadline_s); !r) return r.error();
  if (c.update_deadline_s <= c.update_trial_s) {
    return Error{Errc::config, "SECBOX_UPDATE_DEADLINE_S must be longer than SECBOX_UPDATE_TRIAL_S"};
  }
  if (auto v = src.get("COMPOSE_RENDER_CHECK"); v && !v->first.empty()) {
    if (v->first != "0" && v->first != "1") return bad("COMPOSE_RENDER_CHECK", v->second, "must be 0 or 1");
    c.compose_render_check = v->first == "1";
  }
  if (auto v = src.get("SECBOX_PG_BIN_DIR")) c.pg_bin_dir = v->first;
  if (auto v = src.get("SECBOX_PG_USER")) c.pg_user = v->first;
  if (auto v = src.get("SECBOX_ENV")) {
    if (v->first != "development" && v->first != "production" && !v->first.empty()) {
      return bad("SECBOX_ENV", v->second, "must be development or production");
    }
    c.development = v->first == "development";
  }
  if (auto v = src.get("SECBOX_LOG_LEVEL"); v && !v->first.empty()) {
    if (!log::parse_level(v->first)) {
      return bad("SECBOX_LOG_LEVEL", v->second, "must be debug, info, warn or error");
    }
    c.log_level = v->first;
  }
  if (c.device_id.empty() != c.cloud_base_url.empty()) {
    // Half-paired is a broken file, not "unpaired".
    return Error{Errc::config, path + " has " + (c.device_id.empty() ? "CLOUD_BASE_URL" : "DEVICE_ID") +
                               " but not " + (c.device_id.empty() ? "DEVICE_ID" : "CLOUD_BASE_URL") +
                               "; both are required once paired"};
  }
  if (auto pin = read_file(c.paths.cloud_pin_file(), 4096); pin) {
    if (auto url = parse_cloud_pin(pin.value()); url) {
      c.pinned_cloud = url.value();
    } else {
      c.cloud_pin_error = c.paths.cloud_pin_file() + " " + url.error().message;
    }
  } else if (pin.error().code != Errc::not_found) {
    c.cloud_pin_error = c.paths.cloud_pin_file() + " cannot be read: " + pin.error().message;
  }
  return c;
}

std::vector<std::string> changed_keys(const Config& a, const Config& b) {
  using Field = std::function<std::string(const Config&)>;
  auto num = [](int v) { return std::to_string(v); };
  static const std::vector<std::pair<const char*, Field>> kFields = {
      {"DEVICE_ID", [](const Config& c) { return c.device_id; }},
      {"CLOUD_BASE_URL", [](const Config& c) { return c.cloud_base_url; }},
      {"DEVICE_GATEWAY_URL", [](const Config& c) { return c.device_gateway_url; }},
      {"DATABASE_URL", [](const Config& c) { return c.database_url; }},
      {"FRIGATE_URL", [](const Config& c) { return c.frigate_url; }},
      {"ALARM_MIN_SCORE", [num](const Config& c) { return num(c.alarm_min_score_pct); }},
      {"CLOUD_CA_FILE", [](const Config& c) { return c.cloud_ca_file; }},
      {"COMPOSE_CMD", [](const Config& c) { return c.compose_cmd; }},
      {"COMPOSE_USER", [](const Config& c) { return c.compose_user; }},
      {"COMPOSE_UP_TIMEOUT_S", [num](const Config& c) { return num(c.compose_up_timeout_s); }},
      {"COMPOSE_HEALTH_TIMEOUT_S", [num](const Config& c) { return num(c.compose_health_timeout_s); }},
      {"COMPOSE_RENDER_CHECK", [](const Config& c) { return std::string(c.compose_render_check ? "1" : "0"); }},
      {"CONTAINER_CMD", [](const Config& c) { return c.container_cmd; }},
      {"CONTAINER_HOST", [](const Config& c) { return c.container_host; }},
      {"SYSTEMCTL_CMD", [](const Config& c) { return c.systemctl_cmd; }},
      {"JOURNALCTL_CMD", [](const Config& c) { return c.journalctl_cmd; }},
      {"HEALTH_DISKS", [](const Config& c) { return c.health_disks; }},
      {"NETWORK_INTERFACES", [](const Config& c) { return c.network_interfaces; }},
      {"HEALTH_INTERVAL_S", [num](const Config& c) { return num(c.health_interval_s); }},
      {"LAN_PORT", [num](const Config& c) { return num(c.lan_port); }},
      {"LAN_CERT_CHECK_S", [num](const Config& c) { return num(c.lan_cert_check_s); }},
      {"LAN_CERT_ROOTS_FILE", [](const Config& c) { return c.lan_cert_roots_file; }},
      {"LAN_ADDRESSES", [](const Config& c) { return c.lan_addresses; }},
      {"METRICS_ALLOW", [](const Config& c) { return c.metrics_allow; }},
      {"METRICS_TOKEN", [](const Config& c) { return c.metrics_token; }},
      {"LAN_WEB_DIR", [](const Config& c) { return c.web_dir; }},
      {"PAIRING_PORT", [num](const Config& c) { return num(c.pairing_port); }},
      {"SECBOX_ENV", [](const Config& c) { return std::string(c.development ? "development" : "production"); }},
      {"SECBOX_LOG_LEVEL", [](const Config& c) { return c.log_level; }},
      {"SECBOX_PG_BIN_DIR", [](const Config& c) { return c.pg_bin_dir; }},
      {"SECBOX_PG_USER", [](const Config& c) { return c.pg_user; }},
      {"BOOTSTRAP", [](const Config& c) { return std::string(c.has_bootstrap ? "1" : "0"); }},
      {"SECBOX_VERSIONS_DIR", [](const Config& c) { return c.versions_dir; }},
      {"UPDATE_KEY_FILE", [](const Config& c) { return c.update_key_file; }},
      {"SECBOX_UPDATE_TRIAL_S", [num](const Config& c) { return num(c.update_trial_s); }},
      {"SECBOX_UPDATE_DEADLINE_S", [num](const Config& c) { return num(c.update_deadline_s); }},
  };
  std::vector<std::string> out;
  for (const auto& [key, get] : kFields) {
    if (get(a) != get(b)) out.emplace_back(key);
  }
  return out;
}

bool is_daemon_setting(const std::string& key) {
  static const char* const kKeys[] = {
      "ALARM_MIN_SCORE", "BOOTSTRAP", "CLOUD_BASE_URL", "CLOUD_CA_FILE", "COMPOSE_CMD", "COMPOSE_HEALTH_TIMEOUT_S", "COMPOSE_RENDER_CHECK",
      "COMPOSE_UP_TIMEOUT_S", "COMPOSE_USER", "CONTAINER_CMD", "CONTAINER_HOST", "DATABASE_URL", "DEVICE_GATEWAY_URL",
      "DEVICE_ID", "FRIGATE_URL", "HEALTH_DISKS", "HEALTH_INTERVAL_S", "JOURNALCTL_CMD", "LAN_ADDRESSES", "LAN_CERT_CHECK_S", "LAN_CERT_ROOTS_FILE", "LAN_PORT",
      "LAN_WEB_DIR", "METRICS_ALLOW", "METRICS_TOKEN", "NETWORK_INTERFACES", "PAIRING_PORT", "SYSTEMCTL_CMD", "UPDATE_KEY_FILE"};
  if (key.rfind("SECBOX_", 0) == 0) return true;
  return std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys);
}

bool applies_without_restart(const std::string& key) {
  static const char* const kLive[] = {
      "SECBOX_ENV", "SECBOX_LOG_LEVEL", "COMPOSE_CMD", "COMPOSE_USER", "COMPOSE_UP_TIMEOUT_S",
      "COMPOSE_HEALTH_TIMEOUT_S", "COMPOSE_RENDER_CHECK", "CONTAINER_CMD", "CONTAINER_HOST", "SYSTEMCTL_CMD",
      "JOURNALCTL_CMD", "HEALTH_DISKS", "NETWORK_INTERFACES", "HEALTH_INTERVAL_S",
      // Read where they are used: the pairing's token, the next compose apply.
      "BOOTSTRAP"};
  return std::find(std::begin(kLive), std::end(kLive), key) != std::end(kLive);
}

std::vector<std::string> Config::guard_addresses() const { return appliance::guard_addresses(lan_addresses); }

std::vector<std::string> guard_addresses(const std::string& setting) {
  if (setting.empty()) return secbox::lan_addresses();
  std::vector<std::string> out;
  std::string entry;
  for (char ch : setting + ",") {
    if (ch == ',' || ch == ' ') {
      if (!entry.empty()) out.push_back(entry);
      entry.clear();
    } else {
      entry += ch;
    }
  }
  return out;
}

}  // namespace secbox::appliance
