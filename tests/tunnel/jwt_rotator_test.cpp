#include <gtest/gtest.h>

#include "cloudsim/cloudsim.hpp"
#include "common/log.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "tunnel/jwt_rotator.hpp"

namespace secbox::tunnel {
namespace {

using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;

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

  void make(std::string token) {
    RotatorSettings s{sim.base_url(), sim.ca_file(), token_path, 30ms, 200ms};
    rotator = std::make_unique<JwtRotator>(io, pool, s, std::move(token));
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
  std::optional<RotationResult> result;
  rotator->rotate_now([&](RotationResult r) { result = r; });
  ASSERT_TRUE(run_until(
      io, [&] { return result.has_value(); }, 10s));
  EXPECT_EQ(*result, RotationResult::rotated);
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
  std::optional<RotationResult> result;
  rotator->rotate_now([&](RotationResult r) { result = r; });
  ASSERT_TRUE(run_until(
      io, [&] { return result.has_value(); }, 10s));
  EXPECT_EQ(*result, RotationResult::unavailable);
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
  std::optional<RotationResult> result;
  rotator->rotate_now([&](RotationResult r) { result = r; });
  ASSERT_TRUE(run_until(
      io, [&] { return result.has_value(); }, 20s));
  EXPECT_EQ(*result, RotationResult::unavailable);
  EXPECT_FALSE(rotator->needs_pairing());
  EXPECT_EQ(on_disk(), old_token);
}

TEST_F(RotatorTest, RevokedTokenLeadsToNeedsPairingAndNoMoreCalls) {
  sim.revoke(old_token);
  make(old_token);
  bool needs_pairing = false;
  rotator->on_needs_pairing([&] { needs_pairing = true; });
  std::optional<RotationResult> result;
  rotator->rotate_now([&](RotationResult r) { result = r; });
  ASSERT_TRUE(run_until(
      io, [&] { return result.has_value(); }, 10s));
  EXPECT_EQ(*result, RotationResult::rejected);
  EXPECT_TRUE(needs_pairing);
  EXPECT_TRUE(rotator->needs_pairing());
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(sim.refresh_calls(), 1);
  std::optional<RotationResult> again;
  rotator->rotate_now([&](RotationResult r) { again = r; });
  EXPECT_EQ(again, RotationResult::rejected);
  EXPECT_EQ(sim.refresh_calls(), 1);
}

TEST_F(RotatorTest, RotatesByItselfWhenAQuarterOfTheLifetimeIsLeft) {
  make(sim.issue_token("dev_1", 4s));  // a quarter left after 3 s
  int rotated = 0;
  rotator->on_rotated([&] { ++rotated; });
  rotator->start();
  ASSERT_TRUE(run_until(
      io, [&] { return rotated == 1; }, 10s));
  EXPECT_EQ(on_disk(), rotator->token());
}

TEST_F(RotatorTest, ConcurrentRequestsShareOneRotation) {
  make(old_token);
  int results = 0;
  for (int i = 0; i < 5; ++i)
    rotator->rotate_now([&](RotationResult r) {
      EXPECT_EQ(r, RotationResult::rotated);
      ++results;
    });
  ASSERT_TRUE(run_until(
      io, [&] { return results == 5; }, 10s));
  EXPECT_EQ(sim.refresh_calls(), 1);
}

}  // namespace
}  // namespace secbox::tunnel
