#include <gtest/gtest.h>

#include "cloudsim/cloudsim.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "manual_clock.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "tunnel/jwt_rotator.hpp"

namespace secbox::tunnel {
namespace {

using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;

// A rotation's outcome as a word: "rotated", or its error's condition.
std::string outcome(const Result<void>& r) {
  return r ? "rotated" : std::string(to_string(r.error().code));
}

class RotatorTest : public ::testing::Test {
 protected:
  TempDir dir;
  boost::asio::io_context io;
  BlockingPool pool{io, 1};
  cloudsim::CloudSim sim{
      cloudsim::Options{dir.path(), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)}};
  std::string old_token = sim.issue_token("dev_1");
  std::string token_path = dir.write("device.jwt", old_token + "\n");
  std::vector<std::string> log_lines;
  std::unique_ptr<JwtRotator> rotator;
  std::unique_ptr<Clock> system = system_clock_on(io);
  secbox::testing::ManualClock manual{io};

  void SetUp() override {
    log::set_sink([this](std::string_view l) { log_lines.emplace_back(l); });
  }
  void TearDown() override {
    if (rotator) rotator->stop([] {});
    log::set_sink(nullptr);
    for (const auto& l : log_lines) {
      EXPECT_EQ(l.find(old_token.substr(old_token.rfind('.'))), std::string::npos) << l;
      if (rotator) {
        const auto& t = rotator->token();
        EXPECT_EQ(l.find(t.substr(t.rfind('.'))), std::string::npos) << l;
      }
    }
  }

  // On the system's clock, or on `clock` (the manual one).
  void make(std::string token, Clock* clock = nullptr) {
    RotatorSettings s{sim.base_url(), sim.ca_file(), token_path, 30ms, 200ms};
    rotator = std::make_unique<JwtRotator>(io, pool, clock ? *clock : *system, s, std::move(token));
  }
  // Moves the manual clock on a minute at a time, up to `limit`, until the
  // rotator's wait fires (it has one timer); then waits (for real: HTTP on
  // a worker) until `done`. The manual wall time it fired at, or nullopt.
  std::optional<std::chrono::system_clock::time_point> step_until_rotation(
      std::chrono::minutes limit, const std::function<bool()>& done) {
    for (auto passed = 0min; passed < limit; passed += 1min) {
      if (manual.pending() == 0) return std::nullopt;  // nothing planned
      manual.advance(1min);
      if (manual.pending() == 0) {
        const auto at = manual.wall_now();
        return run_until(io, done, 10s) ? std::optional(at) : std::nullopt;
      }
    }
    return std::nullopt;
  }
  std::string on_disk() {
    auto t = TempDir::read(token_path);
    return t.substr(0, t.find('\n'));
  }
};

TEST_F(RotatorTest, RotationPersistsTheNewTokenBeforeItIsUsed) {
  make(old_token);
  bool disk_had_it_first = false;
  rotator->on_rotated([&] { disk_had_it_first = on_disk() == rotator->token(); });
  std::optional<std::string> result;
  rotator->rotate_now([&](Result<void> r) { result = outcome(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return result.has_value(); }, 10s));
  EXPECT_EQ(*result, "rotated");
  EXPECT_NE(rotator->token(), old_token);
  EXPECT_TRUE(disk_had_it_first);
  EXPECT_EQ(on_disk(), rotator->token());
  EXPECT_EQ(sim.refresh_calls(), 1);
  EXPECT_EQ(sim.last_bearer(), "");  // refresh is HTTP, not the gateway
}

TEST_F(RotatorTest, ServerErrorKeepsTheOldTokenAndRetriesUntilItWorks) {
  sim.set_refresh_status(503);
  make(old_token);
  int rotated = 0;
  rotator->on_rotated([&] { ++rotated; });
  std::optional<std::string> result;
  rotator->rotate_now([&](Result<void> r) { result = outcome(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return result.has_value(); }, 10s));
  EXPECT_EQ(*result, "unavailable");
  EXPECT_EQ(rotator->token(), old_token);
  EXPECT_EQ(on_disk(), old_token);
  ASSERT_TRUE(run_until(
      io, [&] { return sim.refresh_calls() >= 3; }, 10s));
  EXPECT_EQ(on_disk(), old_token);
  sim.set_refresh_status(0);
  ASSERT_TRUE(run_until(
      io, [&] { return rotated == 1; }, 10s));
  EXPECT_EQ(on_disk(), rotator->token());
}

TEST_F(RotatorTest, UnreachableCloudIsUnavailableNotFatal) {
  sim.stop();
  make(old_token);
  std::optional<std::string> result;
  rotator->rotate_now([&](Result<void> r) { result = outcome(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return result.has_value(); }, 20s));
  EXPECT_EQ(*result, "unavailable");
  EXPECT_FALSE(rotator->needs_pairing());
  EXPECT_EQ(on_disk(), old_token);
}

TEST_F(RotatorTest, RevokedTokenLeadsToNeedsPairingAndNoMoreCalls) {
  sim.revoke(old_token);
  make(old_token);
  bool needs_pairing = false;
  rotator->on_needs_pairing([&] { needs_pairing = true; });
  std::optional<std::string> result;
  rotator->rotate_now([&](Result<void> r) { result = outcome(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return result.has_value(); }, 10s));
  EXPECT_EQ(*result, "forbidden") << "rejected: the box needs pairing";
  EXPECT_TRUE(needs_pairing);
  EXPECT_TRUE(rotator->needs_pairing());
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(sim.refresh_calls(), 1);
  std::optional<std::string> again;
  rotator->rotate_now([&](Result<void> r) { again = outcome(r); });
  EXPECT_EQ(again, "forbidden");
  EXPECT_EQ(sim.refresh_calls(), 1);
}

// Time is the manual clock's: hours pass as steps, not sleeps.
TEST_F(RotatorTest, RotatesByItselfWhenAQuarterOfTheLifetimeIsLeft) {
  make(sim.issue_token("dev_1", 4h), &manual);  // a quarter left after 3 h
  int rotated = 0;
  rotator->on_rotated([&] { ++rotated; });
  const auto started = manual.wall_now();
  rotator->start();
  const auto asked = step_until_rotation(4h, [&] { return rotated == 1; });
  ASSERT_TRUE(asked) << "no rotation within the token's life";
  EXPECT_LE(*asked - started, 3h + 1min) << "a quarter of its life left is the latest";
  EXPECT_EQ(on_disk(), rotator->token());
}

// A long-lived token is rotated in the night (a random minute between 02:00
// and 04:00, local time), within a day, long before a quarter is left.
TEST_F(RotatorTest, ALongLivedTokenIsRotatedInTheNightWithinADay) {
  make(sim.issue_token("dev_1", std::chrono::hours(24 * 30)), &manual);
  int rotated = 0;
  rotator->on_rotated([&] { ++rotated; });
  const auto started = manual.wall_now();
  rotator->start();
  const auto asked = step_until_rotation(24h + 1min, [&] { return rotated == 1; });
  ASSERT_TRUE(asked) << "no rotation within a day";
  EXPECT_LE(*asked - started, 24h + 1min);
  const std::time_t t = std::chrono::system_clock::to_time_t(*asked);
  std::tm local{};
  ::localtime_r(&t, &local);
  EXPECT_GE(local.tm_hour, 2) << "asked at " << format_rfc3339(*asked);
  EXPECT_LT(local.tm_hour, 4) << "asked at " << format_rfc3339(*asked);
}

TEST_F(RotatorTest, ConcurrentRequestsShareOneRotation) {
  make(old_token);
  int results = 0;
  for (int i = 0; i < 5; ++i)
    rotator->rotate_now([&](Result<void> r) {
      EXPECT_EQ(outcome(r), "rotated");
      ++results;
    });
  ASSERT_TRUE(run_until(
      io, [&] { return results == 5; }, 10s));
  EXPECT_EQ(sim.refresh_calls(), 1);
}

}  // namespace
}  // namespace secbox::tunnel
