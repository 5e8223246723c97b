#include "pairing/qr.hpp"

#include <libpsl.h>

#include <regex>

#include <nlohmann/json.hpp>

#include "common/url.hpp"

namespace secbox::pairing {
namespace {

using json = nlohmann::json;

// `scheme` required, `loopback_scheme` also allowed for a loopback host.
std::string check_url(const std::string& url, const char* scheme, const char* loopback_scheme) {
  const std::string s = url_scheme(url);
  // A user name or a backslash in the authority reads differently to
  // different parsers (which host is it?): refused, with spaces and controls.
  for (unsigned char c : url) {
    if (c == '@' || c == '\\' || c <= 0x20 || c == 0x7f)
      return "must not contain '@', '\\', spaces or controls";
  }
  if (url_host(url).empty() || url_host(url) == "[]") {
    return std::string("must be a URL starting with ") + scheme + "://, with a host";
  }
  if (s == scheme || (s == loopback_scheme && is_loopback_url(url))) return "";
  return std::string("must start with ") + scheme + ":// (" + loopback_scheme +
         ":// is allowed only for this machine's own address, 127.0.0.1 or localhost)";
}

bool printable_token(const std::string& t) {
  if (t.size() < 16 || t.size() > 512) return false;
  for (unsigned char c : t) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// The string value of a field, or a problem with it.
const std::string* string_field(const json& j, const char* name, std::vector<FieldError>& errors) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    errors.push_back({name, std::string(name) + " is missing"});
    return nullptr;
  }
  if (!it->is_string()) {
    errors.push_back({name, std::string(name) + " must be text (in quotes)"});
    return nullptr;
  }
  return it->get_ptr<const std::string*>();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ip_literal(const std::string& host) {
  static const std::regex kV4(R"(^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$)");
  return (!host.empty() && host[0] == '[') || std::regex_match(host, kV4);
}

// The public suffix list (libpsl: the system's list when Debian's
// publicsuffix has a newer one, else the one built in), read once when the
// program starts, so that no pairing request reads a file on the loop.
const psl_ctx_t* const kPublicSuffixes = [] {
  const psl_ctx_t* latest = psl_latest(nullptr);
  return latest ? latest : psl_builtin();
}();

// A host's site: its registrable domain by the public suffix list, or empty
// when the host is itself a public suffix.
std::string site_of(const std::string& host) {
  const psl_ctx_t* const psl = kPublicSuffixes;
  if (psl == nullptr) return {};
  const char* domain = psl_registrable_domain(psl, host.c_str());
  return domain ? domain : std::string();
}

// Whether a gateway host belongs to the cloud's site: the same registrable
// domain (cloud.secbox.com.mx and gw.secbox.com.mx), never just the same
// public suffix (secbox.com.mx and attacker.com.mx, caseta.co.uk and
// evil.co.uk are other sites).
bool same_site(const std::string& gateway_url, const std::string& cloud_url) {
  const std::string gw = lower(url_host(gateway_url));
  const std::string cloud = lower(url_host(cloud_url));
  if (gw.empty() || cloud.empty()) return false;
  if (gw == cloud) return true;
  if (is_loopback_url(gateway_url) && is_loopback_url(cloud_url)) return true;
  if (ip_literal(gw) || ip_literal(cloud)) return false;
  const std::string site = site_of(cloud);
  return !site.empty() && site_of(gw) == site;
}

}  // namespace

std::vector<FieldError> check_allowed_cloud(const QrCode& qr, const std::string& allowed_cloud) {
  std::vector<FieldError> errors;
  const std::string allowed_origin = url_origin(allowed_cloud);
  if (allowed_origin.empty()) {
    errors.push_back({"cloudBaseUrl",
                      "This box was installed without the cloud it may pair with, so it pairs with "
                      "none: run the installer again with --cloud URL"});
    return errors;
  }
  if (url_origin(qr.cloud_base_url) != allowed_origin ||
      url_path(qr.cloud_base_url) != url_path(allowed_cloud)) {
    errors.push_back({"cloudBaseUrl",
                      "cloudBaseUrl names another cloud than the one this box was installed for (" +
                          allowed_cloud + "); it pairs with that one only"});
  }
  if (!same_site(qr.gateway_url, allowed_cloud)) {
    errors.push_back(
        {"gatewayUrl", "gatewayUrl is not on the site of the cloud this box was installed for (" +
                           allowed_cloud + ")"});
  }
  return errors;
}

std::variant<QrCode, std::vector<FieldError>> parse_qr(std::string_view text) {
  std::vector<FieldError> errors;
  if (text.size() > kMaxQrBytes) {
    return std::vector<FieldError>{
        {"qr", "The text is larger than 8 KiB; paste only the QR code's content"}};
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return std::vector<FieldError>{
        {"qr", "Paste the QR code's content (a JSON text starting with {)"}};
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    return std::vector<FieldError>{
        {"qr", "This is not the QR code's JSON: it stops making sense at character " +
                   std::to_string(e.byte) + ". Paste the whole content, from { to }"}};
  } catch (const json::exception&) {  // e.g. a number too large for any type
    return std::vector<FieldError>{
        {"qr", "This is not the QR code's JSON. Paste the whole content, from { to }"}};
  }
  if (!j.is_object())
    return std::vector<FieldError>{{"qr", "The QR code's content must be a JSON object ({…})"}};

  if (auto it = j.find("v"); it == j.end()) {
    errors.push_back({"v", "v is missing (this box reads QR codes of version 1)"});
  } else if (!it->is_number_integer() || it->get<long long>() != 1) {
    errors.push_back({"v", "v must be 1 (this box reads QR codes of version 1)"});
  }
  QrCode qr;
  if (auto* s = string_field(j, "cloudBaseUrl", errors)) {
    if (auto why = check_url(*s, "https", "http"); !why.empty()) {
      errors.push_back({"cloudBaseUrl", "cloudBaseUrl " + why});
    } else {
      qr.cloud_base_url = *s;
      while (qr.cloud_base_url.size() > 8 && qr.cloud_base_url.back() == '/')
        qr.cloud_base_url.pop_back();
    }
  }
  if (auto* s = string_field(j, "gatewayUrl", errors)) {
    if (auto why = check_url(*s, "wss", "ws"); !why.empty()) {
      errors.push_back({"gatewayUrl", "gatewayUrl " + why});
    } else {
      qr.gateway_url = *s;
    }
  }
  if (auto* s = string_field(j, "deviceId", errors)) {
    static const std::regex kId("^[A-Za-z0-9_-]{3,64}$");
    if (!std::regex_match(*s, kId)) {
      errors.push_back({"deviceId", "deviceId must be 3 to 64 letters, digits, '_' or '-'"});
    } else {
      qr.device_id = *s;
    }
  }
  if (auto* s = string_field(j, "bootstrapToken", errors)) {
    if (!printable_token(*s)) {
      errors.push_back({"bootstrapToken",
                        "bootstrapToken must be 16 to 512 printable characters without spaces"});
    } else {
      qr.bootstrap_token = *s;
    }
  }
  if (auto it = j.find("communityId"); it != j.end() && it->is_string())
    qr.community_id = it->get<std::string>();
  if (!errors.empty()) return errors;
  return qr;
}

}  // namespace secbox::pairing
