#include "pairing/claim.hpp"

#include <nlohmann/json.hpp>

#include "common/http_client.hpp"
#include "common/url.hpp"

namespace secbox::pairing {

ClaimOutcome claim(const ClaimRequest& r) {
  using json = nlohmann::json;
  using Kind = ClaimOutcome::Kind;
  HttpRequest http;
  http.url = r.qr.cloud_base_url + "/api/devices/claim";
  http.ca_file = r.ca_file;
  http.timeout = r.timeout;
  http.json_body = json{{"deviceId", r.qr.device_id},
                        {"bootstrapToken", r.qr.bootstrap_token},
                        {"hostname", r.hostname},
                        {"version", r.version},
                        {"lanCertSha256", r.lan_cert_sha256}}
                       .dump();
  ClaimOutcome out;
  auto answer = post_json(http);
  if (!answer) {
    out.kind = Kind::unreachable;
    out.message = "The cloud at " + r.qr.cloud_base_url + " could not be reached (" +
                  answer.error().message +
                  "). Check the booth's internet connection and try again.";
    return out;
  }
  const auto& a = answer.value();
  auto body = json::parse(a.body, nullptr, false);
  if (a.status == 200) {
    if (!body.is_object() || !body.contains("deviceJwt") || !body["deviceJwt"].is_string() ||
        body["deviceJwt"].get<std::string>().empty()) {
      out.kind = Kind::unreachable;
      out.message =
          "The cloud answered without a device token; nothing was saved. Try again later.";
      return out;
    }
    out.kind = Kind::paired;
    out.device_jwt = body["deviceJwt"].get<std::string>();
    out.expires_at = body.value("expiresAt", "");
    out.gateway_url = r.qr.gateway_url;
    if (auto it = body.find("gatewayUrl");
        it != body.end() && it->is_string() && !it->get<std::string>().empty()) {
      const auto g = it->get<std::string>();
      const auto s = url_scheme(g);
      if (s == "wss" || (s == "ws" && is_loopback_url(g))) out.gateway_url = g;
    }
    return out;
  }
  if (a.status == 401 || a.status == 409) {
    out.kind = Kind::token_rejected;
    out.message =
        a.status == 401
            ? "The cloud does not accept this bootstrap token for " + r.qr.device_id +
                  ". Check that the QR code is the one made for this box, or make a new one."
            : "This QR code was already used to claim " + r.qr.device_id +
                  ". Make a new QR code in the cloud console.";
    return out;
  }
  if (a.status == 400) {
    out.kind = Kind::refused;
    std::string why = body.is_object() && body.contains("error") && body["error"].is_string()
                          ? body["error"].get<std::string>()
                          : std::string("no reason given");
    if (why.size() > 300) why.resize(300);
    out.message = "The cloud refused the claim: " + why;
    return out;
  }
  out.kind = Kind::unreachable;
  out.message = "The cloud is unavailable (HTTP " + std::to_string(a.status) +
                "). Nothing was saved; try again in a minute.";
  return out;
}

}  // namespace secbox::pairing
