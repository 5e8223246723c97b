#include "tunnel/device_token.hpp"

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "common/base64.hpp"

namespace secbox::tunnel {
namespace {

Error bad(std::string message) { return Error{Errc::invalid, std::move(message)}; }

}  // namespace

Result<TokenClaims> decode_claims(std::string_view jwt) {
  const auto first = jwt.find('.');
  const auto second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
  if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) {
    return bad("the device token is not a JWS compact token (three dot-separated parts)");
  }
  auto payload = base64url_decode(jwt.substr(first + 1, second - first - 1));
  if (!payload) return bad("the device token's payload is not base64url");
  auto j = nlohmann::json::parse(*payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("the device token's payload is not JSON");
  auto exp = j.find("exp");
  if (exp == j.end() || !exp->is_number()) return bad("the device token has no numeric exp");
  TokenClaims c;
  c.exp = WallClock::time_point(std::chrono::seconds(exp->get<std::int64_t>()));
  auto iat = j.find("iat");
  // Without iat, a day's lifetime is assumed (the protocol's nightly rotation).
  c.iat = iat != j.end() && iat->is_number()
              ? WallClock::time_point(std::chrono::seconds(iat->get<std::int64_t>()))
              : c.exp - std::chrono::hours(24);
  if (auto sub = j.find("sub"); sub != j.end() && sub->is_string()) c.sub = sub->get<std::string>();
  if (c.exp <= c.iat) return bad("the device token's exp is not after its iat");
  return c;
}

std::chrono::seconds local_utc_offset(WallClock::time_point t) {
  const std::time_t tt = WallClock::to_time_t(t);
  std::tm local{};
  localtime_r(&tt, &local);
  return std::chrono::seconds(local.tm_gmtoff);
}

WallClock::time_point next_rotation(const TokenClaims& claims, WallClock::time_point now,
                                    std::chrono::seconds utc_offset, std::mt19937_64& rng) {
  using namespace std::chrono;
  const auto quarter_left = claims.exp - (claims.exp - claims.iat) / 4;
  if (quarter_left <= now) return now;
  // Local midnight of today (as seconds since the epoch in local time), then
  // 02:00 plus a random minute under two hours, back in UTC.
  const auto local_secs = duration_cast<seconds>((now + utc_offset).time_since_epoch()).count();
  const auto midnight = local_secs - ((local_secs % 86400) + 86400) % 86400;
  std::uniform_int_distribution<int> minute(0, 119);
  auto nightly =
      WallClock::time_point(seconds(midnight)) + hours(2) + minutes(minute(rng)) - utc_offset;
  if (nightly <= now) nightly += hours(24);
  return std::min(nightly, quarter_left);
}

Result<std::string> TokenStore::load() const {
  auto text = read_file(path_, 64 * 1024);
  if (!text) return text.error();
  std::string token = std::move(text).value();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) return Error{Errc::not_found, path_ + " is empty"};
  return token;
}

Result<void> TokenStore::save(std::string_view jwt) const {
  if (jwt.empty() || jwt.find_first_of("\r\n \t") != std::string_view::npos) {
    return Error{Errc::invalid,
                 "refusing to save a device token that is empty or holds white space"};
  }
  return write_file_atomically(path_, std::string(jwt) + "\n");
}

}  // namespace secbox::tunnel
