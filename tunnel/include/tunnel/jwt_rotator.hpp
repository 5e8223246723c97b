#pragma once
// Keeps the device JWT fresh (cloud-protocol §3): rotates it once a night
// (a random minute between 02:00 and 04:00 local time), as soon as a quarter
// of its lifetime is left, and on demand (jwt.rotate, a 4401 close). The new
// token is written to disk (atomically, 0600) before it is used. A 5xx or
// network error keeps the current token and retries (1 s doubling to 5 min,
// jitter). A 401 means the token is no longer accepted: the rotator stops,
// never touches BOOTSTRAP, and reports needs-pairing.
//
// Loop thread only; the HTTPS call and the file write run on the pool. Owned
// by the cloud session. The token never reaches a log.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/blocking.hpp"
#include "common/clock.hpp"
#include "common/component.hpp"
#include "common/log.hpp"
#include "tunnel/device_token.hpp"

namespace secbox::tunnel {

struct RotatorSettings {
  std::string cloud_base_url;
  std::string ca_file;
  std::string token_path;
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{300000};
};

class JwtRotator final : public Component {
 public:
  // `clock` times the rotations and the retries.
  JwtRotator(boost::asio::io_context& loop, BlockingPool& pool, Clock& clock,
             RotatorSettings settings, std::string current_token);

  std::string_view name() const override { return "jwt-rotator"; }
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  // Rotates now. done gets the first attempt's outcome: ok (rotated),
  // Errc::unavailable (the cloud did not answer the refresh; retries go on)
  // or Errc::forbidden (the token is no longer accepted: the box needs
  // pairing). A rotation already under way is joined.
  void rotate_now(std::function<void(Result<void>)> done);

  const std::string& token() const { return token_; }
  std::optional<WallClock::time_point> expires_at() const;
  bool needs_pairing() const { return needs_pairing_; }
  // Called after each new token is on disk and in use.
  void on_rotated(std::function<void()> f) { on_rotated_ = std::move(f); }
  void on_needs_pairing(std::function<void()> f) { on_needs_pairing_ = std::move(f); }

 private:
  void schedule_next();
  void attempt();
  void finish(const Result<void>& result);
  void retry_later(const std::string& why);

  boost::asio::io_context& loop_;
  BlockingPool& pool_;
  RotatorSettings settings_;
  std::string token_;
  std::optional<TokenClaims> claims_;
  Clock& clock_;
  std::unique_ptr<Timer> timer_;
  std::mt19937_64 rng_;
  std::chrono::milliseconds retry_delay_;
  std::vector<std::function<void(Result<void>)>> waiting_;
  std::function<void()> on_rotated_, on_needs_pairing_;
  bool in_flight_ = false;
  bool needs_pairing_ = false;
  bool stopped_ = false;
  log::Logger log_{"jwt"};
};

}  // namespace secbox::tunnel
