// The cloud session against the simulator: the hello it sends fits the
// contract, welcome sets the clock skew, and a cloud that never welcomes is
// left and tried again rather than waited on forever.
#include <gtest/gtest.h>

#include "cloudsim/cloudsim.hpp"
#include "common/ids.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "tunnel/cloud_session.hpp"
#include "protocol/shapes.hpp"

namespace secbox::tunnel {
namespace {

using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;

class CloudSessionTest : public ::testing::Test {
 protected:
  TempDir dir;
  boost::asio::io_context io;
  BlockingPool pool{io, 1};
  cloudsim::CloudSim sim{
      cloudsim::Options{dir.path(), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)}};
  // The box's one dispatcher: sessions come and go beneath it.
  protocol::MessageIds ids;
  protocol::Dispatcher dispatcher{io, ids};
  std::unique_ptr<Clock> clock = system_clock_on(io);
  std::unique_ptr<CloudSession> session;
  int welcomes = 0, disconnects = 0;

  CloudSessionTest() {
    dispatcher.on_session(
        {[this](const nlohmann::json&) { ++welcomes; }, [this] { ++disconnects; }});
  }

  void make(std::chrono::milliseconds welcome_timeout = 30s) {
    SessionSettings s;
    s.tunnel.gateway_url = sim.gateway_url();
    s.tunnel.device_id = "dev_1";
    s.tunnel.version = "0.1.0";
    s.tunnel.ca_file = sim.ca_file();
    s.tunnel.backoff_initial = 20ms;
    s.tunnel.backoff_max = 100ms;
    s.rotator = RotatorSettings{sim.base_url(), sim.ca_file(), dir.file("device.jwt"), 30ms, 200ms};
    s.boot_id = random_uuid();
    s.welcome_timeout = welcome_timeout;
    session =
        std::make_unique<CloudSession>(io, pool, dispatcher, *clock, s, sim.issue_token("dev_1"));
    session->start();
  }

  void stop() {
    bool stopped = false;
    session->stop([&] { stopped = true; });
    EXPECT_TRUE(run_until(
        io, [&] { return stopped; }, 10s));
  }

  void TearDown() override {
    if (session) stop();
  }
};

// A re-pairing: one session stops and the next is made on the same
// dispatcher. What components registered once answers in both; the first
// session's end is heard once, and a reply to a request of the first
// session that comes after it is dropped, not sent on the second.
TEST_F(CloudSessionTest, ASecondSessionIsATransportSwapUnderTheSameRegistrations) {
  int answered = 0;
  std::optional<protocol::Reply> held;
  dispatcher.on_request("metrics.get", [&](const protocol::Envelope& e, protocol::Reply r) {
    ++answered;
    if (e.payload.value("hold", false)) {
      held = std::move(r);
    } else {
      r.send("metrics.result", {{"cpuPct", 1}});
    }
  });
  auto ask = [&](const std::string& id, bool hold) {
    sim.send_text(nlohmann::json{{"v", 1},
                                 {"type", "metrics.get"},
                                 {"id", id},
                                 {"ts", "2026-12-08T10:00:00Z"},
                                 {"payload", {{"hold", hold}}}}
                      .dump());
  };
  auto reply_to = [&](const std::string& id) {
    std::optional<cloudsim::Received> r;
    run_until(
        io,
        [&] {
          r = sim.wait_for(
              [&](const cloudsim::Received& m) { return m.message.value("re", "") == id; }, 0ms);
          return r.has_value();
        },
        10s);
    return r;
  };

  make();
  ASSERT_TRUE(run_until(
      io, [&] { return welcomes == 1; }, 10s));
  ask("c-1", false);
  ASSERT_TRUE(reply_to("c-1"));
  ask("c-2", true);
  ASSERT_TRUE(run_until(
      io, [&] { return held.has_value(); }, 10s));

  stop();
  EXPECT_EQ(disconnects, 1);
  EXPECT_FALSE(dispatcher.has_transport());
  EXPECT_FALSE(dispatcher.send("box.note", nlohmann::json::object()))
      << "no way out between sessions";

  make();
  ASSERT_TRUE(run_until(
      io, [&] { return welcomes == 2; }, 10s));
  held->send("metrics.result", {{"cpuPct", 2}});  // the first session's: dropped
  ask("c-3", false);
  ASSERT_TRUE(reply_to("c-3")) << "the handler registered once answers in the next session";
  EXPECT_EQ(answered, 3);
  for (const auto& r : sim.received()) EXPECT_NE(r.message.value("re", ""), "c-2");
  EXPECT_EQ(disconnects, 1);
}

TEST_F(CloudSessionTest, HelloFitsTheContractAndWelcomeSetsTheSkew) {
  make();
  ASSERT_TRUE(run_until(
      io, [&] { return welcomes == 1; }, 10s));
  EXPECT_TRUE(session->welcomed());
  ASSERT_TRUE(session->clock_skew_seconds());
  EXPECT_LT(std::abs(*session->clock_skew_seconds()), 5.0);
  auto hello = sim.wait_for_type("hello", 1s);
  ASSERT_TRUE(hello);
  const auto& payload = hello->message["payload"];
  auto problem = protocol::shapes::check(*protocol::shapes::message("hello"), payload);
  EXPECT_FALSE(problem) << problem->describe();
  EXPECT_EQ(protocol::shapes::unknown_fields(*protocol::shapes::message("hello"), payload),
            std::vector<std::string>{});
  for (const auto& entity : protocol::shapes::entities())
    EXPECT_EQ(payload["cursors"][entity], 0) << entity;

  sim.close_device(1011, "test");
  ASSERT_TRUE(run_until(
      io, [&] { return welcomes == 2; }, 10s));
  EXPECT_EQ(disconnects, 1);
}

TEST_F(CloudSessionTest, NoWelcomeMeansStartingOverNotWaitingForever) {
  sim.set_auto_welcome(false);
  make(300ms);
  // Each connection says hello, hears nothing, and is dropped for a new one.
  ASSERT_TRUE(run_until(
      io, [&] { return sim.sessions_opened() >= 3; }, 15s));
  EXPECT_EQ(welcomes, 0);
  EXPECT_FALSE(session->welcomed());
  int hellos = 0;
  for (const auto& r : sim.received()) hellos += r.message.value("type", "") == "hello";
  EXPECT_GE(hellos, 2);

  sim.set_auto_welcome(true);
  ASSERT_TRUE(run_until(
      io, [&] { return welcomes == 1; }, 15s));
  EXPECT_TRUE(session->welcomed());
}

TEST_F(CloudSessionTest, HelloAnsweredWithAnErrorIsNotAWelcome) {
  sim.set_auto_welcome(false);
  make(30s);
  // The box's side runs on `io`, so wait by running it.
  std::optional<cloudsim::Received> hello;
  ASSERT_TRUE(run_until(
      io, [&] { return (hello = sim.wait_for_type("hello", 0ms)).has_value(); }, 10s));
  const int opened = sim.sessions_opened();
  sim.send_text(nlohmann::json{{"v", 1},
                               {"type", "error"},
                               {"id", "c-1"},
                               {"ts", "2026-11-22T10:00:00Z"},
                               {"re", hello->message["id"]},
                               {"payload", {{"code", "unavailable"}, {"message", "try later"}}}}
                    .dump());
  ASSERT_TRUE(run_until(
      io, [&] { return sim.sessions_opened() > opened; }, 10s));
  EXPECT_EQ(welcomes, 0);
}

}  // namespace
}  // namespace secbox::tunnel
