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

struct Source {
  const envfile::EnvFile& file;
  const Environment& env;
  const std::string& file_path;

  // The value and where it came from, for error messages.
  std::optional<std::pair<std::string, std::string>> get(const std::string& key) const {
    if (auto v = file.get(key)) return std::make_pair(*v, file_path);
    if (auto it = env.find(key); it != env.end())
      return std::make_pair(it->second, "the environment");
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
  if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), ::isdigit) ||
      std::stoi(s) > 65535) {
    return bad(key, v->second, "must be a port number from 1 to 65535 (or 0 for any free port)");
  }
  out = std::stoi(s);
  return ok();
}

Result<void> read_seconds(const Source& src, const std::string& key, int min, int max, int& out) {
  auto v = src.get(key);
  if (!v || v->first.empty()) return ok();
  const auto& s = v->first;
  if (s.size() > 6 || !std::all_of(s.begin(), s.end(), ::isdigit) || std::stoi(s) < min ||
      std::stoi(s) > max) {
    return bad(key, v->second,
               "must be a whole number of seconds from " + std::to_string(min) + " to " +
                   std::to_string(max));
  }
  out = std::stoi(s);
  return ok();
}

void read_text(const Source& src, const std::string& key, std::string& out) {
  if (auto v = src.get(key); v && !v->first.empty()) out = v->first;
}

Result<void> read_absolute_path(const Source& src, const std::string& key, std::string& out) {
  auto v = src.get(key);
  if (!v || v->first.empty()) return ok();
  if (v->first[0] != '/') return bad(key, v->second, "must be an absolute path");
  out = v->first;
  return ok();
}

std::string as_text(const std::string& v) { return v; }
std::string as_text(int v) { return std::to_string(v); }
std::string as_text(bool v) { return v ? "1" : "0"; }

// One setting of secbox.env: how it is read into the Config, how a change is
// seen and carried into a running box, whether its value may be logged, and
// whether a running box takes it at once. Loading, change detection, the
// daemon's own keys, the log redaction and live application all come from
// the one table below: a new setting is one row.
struct Setting {
  const char* key;
  bool is_public = true;  // false: its value is a secret, kept out of logs
  bool live = false;      // a running box applies it at once (else at the next start)
  std::function<Result<void>(const Source&, const char* key, Config&)> read;
  std::function<std::string(const Config&)> value;
  std::function<void(const Config& from, Config& to)> copy;
};

enum Kind { kPublic = 0, kSecret = 1, kLive = 2 };

// A row for one Config member, read by `read(src, key, member)`.
template <class T, class Read>
Setting row(const char* key, T Config::*member, int kind, Read read) {
  return Setting{key,
                 (kind & kSecret) == 0,
                 (kind & kLive) != 0,
                 [member, read](const Source& src, const char* k, Config& c) -> Result<void> {
                   return read(src, k, c.*member);
                 },
                 [member](const Config& c) { return as_text(c.*member); },
                 [member](const Config& from, Config& to) { to.*member = from.*member; }};
}

Result<void> text(const Source& src, const std::string& key, std::string& out) {
  read_text(src, key, out);
  return ok();
}
// Read even when empty (an empty value means "none" or "automatic").
Result<void> text_or_empty(const Source& src, const std::string& key, std::string& out) {
  if (auto v = src.get(key)) out = v->first;
  return ok();
}
auto url(const char* secure, const char* insecure) {
  return [secure, insecure](const Source& src, const std::string& key, std::string& out) {
    return read_url(src, key, secure, insecure, out);
  };
}
auto seconds(int min, int max) {
  return [min, max](const Source& src, const std::string& key, int& out) {
    return read_seconds(src, key, min, max, out);
  };
}

const std::vector<Setting>& settings() {
  static const std::vector<Setting> kSettings = {
      row("DEVICE_ID", &Config::device_id, kPublic,
          [](const Source& src, const std::string& key, std::string& out) -> Result<void> {
            auto v = src.get(key);
            if (!v || v->first.empty()) return ok();
            static const std::regex kId("^[A-Za-z0-9_-]{3,64}$");
            if (!std::regex_match(v->first, kId))
              return bad(key, v->second, "must be 3 to 64 letters, digits, _ or -");
            out = v->first;
            return ok();
          }),
      row("CLOUD_BASE_URL", &Config::cloud_base_url, kPublic, url("https", "http")),
      row("DEVICE_GATEWAY_URL", &Config::device_gateway_url, kPublic, url("wss", "ws")),
      row("FRIGATE_URL", &Config::frigate_url, kPublic, url("http", "http")),
      row("LAN_PORT", &Config::lan_port, kPublic, read_port),
      row("LAN_WEB_DIR", &Config::web_dir, kPublic, text),
      row("PAIRING_PORT", &Config::pairing_port, kPublic, read_port),
      // Read where it is used (the pairing); here only whether there is one.
      row("BOOTSTRAP", &Config::has_bootstrap, kSecret | kLive,
          [](const Source& src, const std::string& key, bool& out) -> Result<void> {
            if (auto v = src.get(key); v && !v->first.empty()) {
              log::add_secret(v->first);
              out = true;
            }
            return ok();
          }),
      row("DATABASE_URL", &Config::database_url, kSecret,
          [](const Source& src, const std::string& key, std::string& out) -> Result<void> {
            if (auto v = src.get(key)) {
              if (!v->first.empty()) log::add_secret(v->first);
              out = v->first;
            }
            return ok();
          }),
      row("LAN_ADDRESSES", &Config::lan_addresses, kPublic,
          [](const Source& src, const std::string& key, std::string& out) -> Result<void> {
            auto v = src.get(key);
            if (!v || v->first.empty()) return ok();
            std::string bad_entry;
            if (!AddressList::parse(v->first, &bad_entry))
              return bad(key, v->second, "\"" + bad_entry + "\" is not an address");
            out = v->first;
            return ok();
          }),
      row("LAN_CERT_ROOTS_FILE", &Config::lan_cert_roots_file, kPublic, read_absolute_path),
      row("CLOUD_CA_FILE", &Config::cloud_ca_file, kPublic, read_absolute_path),
      row("COMPOSE_CMD", &Config::compose_cmd, kLive, text),
      row("COMPOSE_USER", &Config::compose_user, kLive, text),
      row("CONTAINER_CMD", &Config::container_cmd, kLive, text),
      row("CONTAINER_HOST", &Config::container_host, kLive,
          [](const Source& src, const std::string& key, std::string& out) -> Result<void> {
            auto v = src.get(key);
            if (!v || v->first.empty()) return ok();
            // Only a local socket: the tools must not be pointed at another machine.
            if (v->first.rfind("unix:///", 0) != 0 ||
                v->first.find_first_of(" \t") != std::string::npos) {
              return bad(key, v->second, "must be a unix:/// socket path");
            }
            out = v->first;
            return ok();
          }),
      row("SYSTEMCTL_CMD", &Config::systemctl_cmd, kLive, text),
      row("JOURNALCTL_CMD", &Config::journalctl_cmd, kLive, text),
      row("HEALTH_DISKS", &Config::health_disks, kLive, text),
      row("NETWORK_INTERFACES", &Config::network_interfaces, kLive, text),
      row("COMPOSE_UP_TIMEOUT_S", &Config::compose_up_timeout_s, kLive, seconds(1, 3600)),
      row("COMPOSE_HEALTH_TIMEOUT_S", &Config::compose_health_timeout_s, kLive, seconds(1, 3600)),
      row("HEALTH_INTERVAL_S", &Config::health_interval_s, kLive, seconds(1, 3600)),
      row("ALARM_MIN_SCORE", &Config::alarm_min_score_pct, kPublic,
          [](const Source& src, const std::string& key, int& out) -> Result<void> {
            auto v = src.get(key);
            if (!v || v->first.empty()) return ok();
            const auto& t = v->first;
            if (t.size() > 3 || !std::all_of(t.begin(), t.end(), ::isdigit) || std::stoi(t) < 1 ||
                std::stoi(t) > 100) {
              return bad(key, v->second,
                         "must be a percentage from 1 to 100 (80: a plate read with a score of 0.8 "
                         "or more)");
            }
            out = std::stoi(t);
            return ok();
          }),
      row("LAN_CERT_CHECK_S", &Config::lan_cert_check_s, kPublic, seconds(1, 86400)),
      row("METRICS_ALLOW", &Config::metrics_allow, kPublic,
          [](const Source& src, const std::string& key, std::string& out) -> Result<void> {
            auto v = src.get(key);
            if (!v) return ok();
            if (!AddressList::parse(v->first)) {
              return bad(
                  key, v->second,
                  "holds an entry that is no address or block (a.b.c.d, a.b.c.d/n, or IPv6)");
            }
            out = v->first;
            return ok();
          }),
      row("METRICS_TOKEN", &Config::metrics_token, kSecret,
          [](const Source& src, const std::string& key, std::string& out) -> Result<void> {
            auto v = src.get(key);
            if (!v || v->first.empty()) return ok();
            if (v->first.size() < 16) return bad(key, v->second, "must be at least 16 characters");
            out = v->first;
            return ok();
          }),
      row("SECBOX_VERSIONS_DIR", &Config::versions_dir, kPublic, text),
      row("UPDATE_KEY_FILE", &Config::update_key_file, kPublic, text),  // default <etc>/update.pub
      row("SECBOX_UPDATE_TRIAL_S", &Config::update_trial_s, kPublic, seconds(1, 3600)),
      row("SECBOX_UPDATE_DEADLINE_S", &Config::update_deadline_s, kPublic, seconds(10, 7200)),
      row("COMPOSE_RENDER_CHECK", &Config::compose_render_check, kLive,
          [](const Source& src, const std::string& key, bool& out) -> Result<void> {
            auto v = src.get(key);
            if (!v || v->first.empty()) return ok();
            if (v->first != "0" && v->first != "1") return bad(key, v->second, "must be 0 or 1");
            out = v->first == "1";
            return ok();
          }),
      row("SECBOX_PG_BIN_DIR", &Config::pg_bin_dir, kPublic, text_or_empty),
      row("SECBOX_PG_USER", &Config::pg_user, kPublic, text_or_empty),
      row("SECBOX_ENV", &Config::development, kLive,
          [](const Source& src, const std::string& key, bool& out) -> Result<void> {
            auto v = src.get(key);
            if (!v) return ok();
            if (v->first != "development" && v->first != "production" && !v->first.empty()) {
              return bad(key, v->second, "must be development or production");
            }
            out = v->first == "development";
            return ok();
          }),
      row("SECBOX_LOG_LEVEL", &Config::log_level, kLive,
          [](const Source& src, const std::string& key, std::string& out) -> Result<void> {
            auto v = src.get(key);
            if (!v || v->first.empty()) return ok();
            if (!log::parse_level(v->first))
              return bad(key, v->second, "must be debug, info, warn or error");
            out = v->first;
            return ok();
          }),
  };
  return kSettings;
}

const Setting* find_setting(const std::string& key) {
  for (const auto& s : settings()) {
    if (key == s.key) return &s;
  }
  return nullptr;
}

// Keys whose values are not secret: everything else read from the env file
// is registered with the log redaction.
bool is_public_key(const std::string& key) {
  const auto* s = find_setting(key);
  return s && s->is_public;
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
    if (!url.empty())
      return Error{Errc::config,
                   "holds more than one URL; it names the one cloud this box pairs with"};
    url = line;
  }
  if (url.empty()) return Error{Errc::config, "holds no URL"};
  for (unsigned char c : url) {
    if (c == '@' || c == '\\' || c <= 0x20 || c == 0x7f)
      return Error{Errc::config, "holds a URL with '@', '\\' or spaces"};
  }
  const std::string scheme = url_scheme(url);
  if (url_origin(url).empty() ||
      !(scheme == "https" || (scheme == "http" && is_loopback_url(url)))) {
    return Error{Errc::config,
                 "must hold an https:// URL (http:// only for this machine's own address)"};
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
    if (c.paths.compose_root[0] != '/')
      return Error{Errc::config, "SECBOX_COMPOSE_DIR must be an absolute path"};
    while (c.paths.compose_root.size() > 1 && c.paths.compose_root.back() == '/')
      c.paths.compose_root.pop_back();
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

  c.update_key_file = c.paths.etc_dir + "/update.pub";
  for (const auto& setting : settings()) {
    if (auto r = setting.read(src, setting.key, c); !r) return r.error();
  }
  if (c.update_deadline_s <= c.update_trial_s) {
    return Error{Errc::config,
                 "SECBOX_UPDATE_DEADLINE_S must be longer than SECBOX_UPDATE_TRIAL_S"};
  }
  if (c.device_id.empty() != c.cloud_base_url.empty()) {
    // Half-paired is a broken file, not "unpaired".
    return Error{Errc::config,
                 path + " has " + (c.device_id.empty() ? "CLOUD_BASE_URL" : "DEVICE_ID") +
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
  std::vector<std::string> out;
  for (const auto& s : settings()) {
    if (s.value(a) != s.value(b)) out.emplace_back(s.key);
  }
  return out;
}

bool is_daemon_setting(const std::string& key) {
  return key.rfind("SECBOX_", 0) == 0 || find_setting(key) != nullptr;
}

bool applies_without_restart(const std::string& key) {
  const auto* s = find_setting(key);
  return s && s->live;
}

void apply_setting(const std::string& key, const Config& from, Config& to) {
  if (const auto* s = find_setting(key)) s->copy(from, to);
}

std::vector<std::string> Config::guard_addresses() const {
  return appliance::guard_addresses(lan_addresses);
}

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
