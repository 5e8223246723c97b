#include "tunnel/jwt_rotator.hpp"

#include <nlohmann/json.hpp>

#include "common/http_client.hpp"
#include "common/time.hpp"

namespace secbox::tunnel {
namespace {

struct Refreshed {
  long status = 0;
  std::string token;
  std::optional<TokenClaims> claims;
  std::string problem;  // why a 200 was unusable, or the network error
};

}  // namespace

JwtRotator::JwtRotator(boost::asio::io_context& loop, BlockingPool& pool, Clock& clock,
                       RotatorSettings settings, std::string current_token)
    : loop_(loop), pool_(pool), settings_(std::move(settings)), token_(std::move(current_token)),
      clock_(clock), timer_(clock.make_timer()), rng_(std::random_device{}()),
      retry_delay_(settings_.retry_initial) {
  log::add_transient_secret(token_);
  if (auto c = decode_claims(token_)) claims_ = c.value();
}

std::optional<WallClock::time_point> JwtRotator::expires_at() const {
  return claims_ ? std::optional(claims_->exp) : std::nullopt;
}

void JwtRotator::start() {
  stopped_ = false;
  if (!claims_) {
    log_.warn("The device token cannot be decoded; rotating it now.");
    attempt();
    return;
  }
  schedule_next();
}

void JwtRotator::stop(std::function<void()> on_stopped) {
  stopped_ = true;
  timer_->cancel();
  on_stopped();
}

void JwtRotator::schedule_next() {
  if (stopped_ || needs_pairing_ || !claims_) return;
  const auto now = clock_.wall_now();
  const auto at = next_rotation(*claims_, now, local_utc_offset(now), rng_);
  log_.info("Next device-token rotation planned.",
            {{"at", format_rfc3339(at)}, {"expires_at", format_rfc3339(claims_->exp)}});
  timer_->wait(std::chrono::duration_cast<std::chrono::milliseconds>(at - now),
               [this] { attempt(); });
}

namespace {
Error rejected() {
  return Error{Errc::forbidden, "the token is no longer accepted; the box needs pairing"};
}
}  // namespace

void JwtRotator::rotate_now(std::function<void(Result<void>)> done) {
  if (needs_pairing_) {
    if (done) done(rejected());
    return;
  }
  if (done) waiting_.push_back(std::move(done));
  if (!in_flight_) {
    timer_->cancel();
    attempt();
  }
}

void JwtRotator::attempt() {
  if (stopped_ || in_flight_) return;
  in_flight_ = true;
  HttpRequest req;
  req.url = settings_.cloud_base_url + "/api/devices/refresh-jwt";
  req.bearer = token_;
  req.json_body = "{}";
  req.ca_file = settings_.ca_file;
  pool_.run(
      [req, path = settings_.token_path]() -> Refreshed {
        Refreshed out;
        auto res = post_json(req);
        if (!res) {
          out.problem = res.error().message;
          return out;
        }
        out.status = res.value().status;
        if (out.status != 200) return out;
        auto body = nlohmann::json::parse(res.value().body, nullptr, false);
        if (!body.is_object() || !body.contains("deviceJwt") || !body["deviceJwt"].is_string()) {
          out.problem = "the cloud's answer has no deviceJwt";
          return out;
        }
        out.token = body["deviceJwt"].get<std::string>();
        auto claims = decode_claims(out.token);
        if (!claims) {
          out.problem = claims.error().message;
          return out;
        }
        out.claims = claims.value();
        // On disk before it is used; the old file stays until this succeeds.
        if (auto saved = TokenStore(path).save(out.token); !saved) {
          out.problem = "cannot persist the new token: " + saved.error().message;
          out.claims.reset();
        }
        return out;
      },
      [this](Refreshed r) {
        in_flight_ = false;
        if (stopped_) return;
        if (r.status == 200 && r.claims) {
          log::add_transient_secret(r.token);
          token_ = std::move(r.token);
          claims_ = r.claims;
          retry_delay_ = settings_.retry_initial;
          log_.info("Rotated the device token.", {{"expires_at", format_rfc3339(claims_->exp)}});
          if (on_rotated_) on_rotated_();
          finish(ok());
          schedule_next();
        } else if (r.status == 401) {
          needs_pairing_ = true;
          log_.error(
              "The cloud no longer accepts the device token (401); the box needs pairing again.");
          finish(rejected());
          if (on_needs_pairing_) on_needs_pairing_();
        } else {
          const std::string why = r.status != 0 ? "HTTP " + std::to_string(r.status) +
                                                      (r.problem.empty() ? "" : ": " + r.problem)
                                                : r.problem;
          finish(Error{Errc::unavailable, "the cloud did not answer the refresh; retrying"});
          retry_later(why);
        }
      });
}

void JwtRotator::finish(const Result<void>& result) {
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& done : waiting) done(result);
}

void JwtRotator::retry_later(const std::string& why) {
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  const auto delay = std::chrono::milliseconds(
      static_cast<long long>(static_cast<double>(retry_delay_.count()) * jitter(rng_)));
  retry_delay_ = std::min(retry_delay_ * 2, settings_.retry_max);
  log_.warn("Rotating the device token failed; keeping the current one and retrying in " +
                std::to_string(delay.count()) + " ms.",
            {{"reason", why}});
  timer_->wait(delay, [this] { attempt(); });
}

}  // namespace secbox::tunnel
