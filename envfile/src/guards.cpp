#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "envfile/guards.hpp"

namespace secbox::envfile {

Result<std::string> derive_gateway_url(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return Error{Errc::invalid, "MGMT_GATEWAY_URL is not a URL (no scheme)"};
  }
  // The path ends where the query or fragment begins.
  auto path_start = url.find('/', scheme_end + 3);
  auto path_end = url.find_first_of("?#", scheme_end + 3);
  if (path_end == std::string_view::npos) path_end = url.size();
  if (path_start == std::string_view::npos || path_start > path_end) {
    return Error{Errc::invalid,
                 "MGMT_GATEWAY_URL has no path, so its last segment is not \"mgmt\""};
  }
  std::string_view path = url.substr(path_start, path_end - path_start);
  std::size_t seg_end = path.size();
  if (seg_end > 1 && path[seg_end - 1] == '/') --seg_end;  // one trailing slash is kept
  std::size_t seg_start = path.rfind('/', seg_end - 1) + 1;
  std::string_view segment = path.substr(seg_start, seg_end - seg_start);
  if (segment != "mgmt") {
    return Error{Errc::invalid,
                 "MGMT_GATEWAY_URL's last path segment is \"" + std::string(segment.substr(0, 64)) +
                     "\", not \"mgmt\", so DEVICE_GATEWAY_URL cannot be derived from it"};
  }
  std::string out(url.substr(0, path_start + seg_start));
  out += "device";
  out += url.substr(path_start + seg_end);
  return out;
}

Result<EnvFile> derive_from_legacy(const EnvFile& legacy) {
  EnvFile env;
  for (const char* key : {"CLOUD_BASE_URL", "DEVICE_ID", "BOOTSTRAP"}) {
    if (auto v = legacy.get(key)) env.set(key, *v);
  }
  if (auto mgmt = legacy.get("MGMT_GATEWAY_URL"); mgmt && !mgmt->empty()) {
    auto derived = derive_gateway_url(*mgmt);
    if (!derived) return derived.error();
    env.set("DEVICE_GATEWAY_URL", derived.value());
  }
  for (const auto& e : env.entries()) {
    if (auto r = validate_value(e.key, e.value); !r) {
      return Error{Errc::invalid, r.error().message};
    }
  }
  return env;
}

Result<EnsureOutcome> ensure_from_legacy(const std::string& env_path,
                                         const std::string& legacy_path,
                                         std::optional<FileOwner> owner, bool dry_run) {
  auto current = load(env_path);
  if (current && !current.value().empty()) {
    return EnsureOutcome{false, std::move(current).value(), env_path + " is present"};
  }
  if (!current && current.error().code != Errc::not_found) {
    return current.error();
  }
  const std::string why = current ? env_path + " holds no settings" : env_path + " is missing";
  auto legacy = load(legacy_path);
  if (!legacy) {
    if (legacy.error().code == Errc::not_found) {
      return Error{Errc::not_found, why + " and there is no " + legacy_path + " to derive it from"};
    }
    return Error{legacy.error().code, why + " and " + legacy.error().message};
  }
  auto derived = derive_from_legacy(legacy.value());
  if (!derived) return derived.error();
  if (dry_run) {
    return EnsureOutcome{true, std::move(derived).value(),
                         why + "; it would be derived from " + legacy_path};
  }
  if (auto w = save(env_path, derived.value(), owner); !w) {
    return Error{w.error().code, "cannot write " + env_path + ": " + w.error().message};
  }
  return EnsureOutcome{true, std::move(derived).value(), why + "; derived it from " + legacy_path};
}

Result<void> check_required_keys(const EnvFile& env) {
  std::string missing;
  for (const char* key : {"DEVICE_ID", "CLOUD_BASE_URL"}) {
    if (!env.has_nonempty(key)) missing += missing.empty() ? key : std::string(", ") + key;
  }
  if (!missing.empty()) {
    return Error{Errc::invalid,
                 "secbox.env lacks " + missing + " (required and non-empty); no container touched"};
  }
  return ok();
}

bool is_reserved_variable(std::string_view name) {
  static const char* const kExact[] = {"PATH",
                                       "HOME",
                                       "USER",
                                       "LOGNAME",
                                       "SHELL",
                                       "LANG",
                                       "LANGUAGE",
                                       "TMPDIR",
                                       "IFS",
                                       "ENV",
                                       "BASH_ENV",
                                       "GCONV_PATH",
                                       "HOSTALIASES",
                                       "LOCALDOMAIN",
                                       "NLSPATH",
                                       "RES_OPTIONS",
                                       "TZDIR",
                                       "NOTIFY_SOCKET",
                                       "REGISTRY_AUTH_FILE",
                                       "STORAGE_DRIVER",
                                       "STORAGE_OPTS",
                                       "CONTAINER_HOST",
                                       "CONTAINER_CONNECTION",
                                       "CONTAINER_SSHKEY",
                                       "CONTAINER_PASSPHRASE"};
  static const char* const kPrefix[] = {
      "LD_",      "LC_",     "PYTHON", "XDG_", "DOCKER_",  "COMPOSE_", "PODMAN_", "CONTAINERS_",
      "BUILDAH_", "MALLOC_", "GLIBC_", "SSL_", "OPENSSL_", "CURL_",    "DBUS_",   "SYSTEMD_"};
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  for (const char* e : kExact) {
    if (upper == e) return true;
  }
  for (const char* p : kPrefix) {
    if (upper.rfind(p, 0) == 0) return true;
  }
  return upper.size() > 6 && upper.compare(upper.size() - 6, 6, "_PROXY") == 0;
}

Result<void> check_interpolation(std::string_view compose_text, const EnvFile& env) {
  auto problems = find_unresolved(compose_text, env);
  if (problems.empty()) {
    for (const auto& name : referenced_variables(compose_text)) {
      if (is_reserved_variable(name)) {
        return Error{Errc::invalid, "the compose file interpolates " + name +
                                        ", a name that changes how programs run; secbox never "
                                        "hands it to the compose tool"};
      }
    }
    return ok();
  }
  std::string names;
  std::string details;
  std::vector<std::string> seen;
  for (const auto& p : problems) {
    if (!p.variable.empty() && std::find(seen.begin(), seen.end(), p.variable) == seen.end()) {
      seen.push_back(p.variable);
      names += names.empty() ? p.variable : ", " + p.variable;
    }
    if (!details.empty()) details += "; ";
    details += "line " + std::to_string(p.line) + ": " + p.reason;
  }
  std::string message = names.empty() ? "the compose file has interpolation errors"
                                      : "these variables would not resolve: " + names;
  return Error{Errc::invalid, message + " (" + details + ")"};
}

}  // namespace secbox::envfile
