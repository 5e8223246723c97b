// The real secbox against a cloud with bugs, and a log reader that goes
// away: nothing the cloud sends ends the process, a malformed message gets
// bad_message (§4.1), and a closed standard output costs only log lines.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include "cloudsim/cloudsim.hpp"
#include "daemon.hpp"
#include "paired_box.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"

namespace secbox {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using secbox::testing::Daemon;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

class HostileCloudE2E : public ::testing::Test {
 protected:
  TestDatabase db;
  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    sim = secbox::testing::paired_simulator(dir);
  }

  std::optional<cloudsim::Received> hello_of_session(int session) {
    return sim->wait_for(
        [session](const cloudsim::Received& r) {
          return r.session == session && r.message.value("type", "") == "hello";
        },
        30s);
  }

  static std::string reply_to(const std::string& re, const std::string& type,
                              const std::string& payload) {
    return R"({"v":1,"type":")" + type + R"(","id":"c-)" + re + R"(","re":")" + re +
           R"(","ts":"2026-12-02T10:00:00Z","payload":)" + payload + "}";
  }
};

// The case that broke a box once: `error` answering hello with a numeric code and an array
// for a message ended the daemon with nlohmann's type_error.
TEST_F(HostileCloudE2E, RepliesToTheBoxsOwnRequestsWithAnyShapeNeverEndTheDaemon) {
  sim->set_auto_welcome(false);
  Daemon d(dir, {"DATABASE_URL=" + db.url(), "SECBOX_LOG_LEVEL=debug"});
  d.start();
  const char* bad_replies[][2] = {
      {"error", R"({"code":5,"message":[]})"},
      {"error", R"({"code":null,"message":{"a":1}})"},
      {"error", R"({})"},
      {"welcome", R"({"serverTime":5,"resync":"all"})"},
      {"welcome", R"({"resync":[1,2,3]})"},
      {"welcome", R"({"serverTime":"2026-12-02T10:00:00Z","resync":[{"x":[]}]})"},
  };
  int session = 1;
  for (const auto& [type, payload] : bad_replies) {
    auto hello = hello_of_session(session);
    ASSERT_TRUE(hello) << "no hello on session " << session << " after " << type << " " << payload
                       << "\n"
                       << d.log();
    ASSERT_TRUE(sim->send_text(reply_to(hello->message["id"], type, payload)));
    ASSERT_TRUE(d.running()) << type << " " << payload << "\n" << d.log();
    ++session;
  }
  // Still the box: a proper welcome is taken, and it answers requests.
  sim->set_auto_welcome(true);
  ASSERT_TRUE(hello_of_session(session)) << d.log();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 10s)) << d.log();
  EXPECT_TRUE(d.running());
  EXPECT_EQ(d.log().find("terminate called"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("does not fit its type"), std::string::npos) << "a bad welcome is named";
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(15s), 0) << d.log();
}

// §4.1: a payload that is present but not an object, null included, is
// bad_message, with re when the id was usable.
TEST_F(HostileCloudE2E, APayloadThatIsNullOrNotAnObjectIsBadMessage) {
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 30s)) << d.log();
  int n = 0;
  for (const char* payload : {"null", "[]", "7", R"("x")"}) {
    const std::string id = "hx-" + std::to_string(++n);
    ASSERT_TRUE(sim->send_text(R"({"v":1,"type":"jwt.rotate","id":")" + id +
                               R"(","ts":"2026-12-02T10:00:00Z","payload":)" + payload + "}"));
    auto reply = sim->wait_for(
        [&](const cloudsim::Received& r) { return r.message.value("re", "") == id; }, 10s);
    ASSERT_TRUE(reply) << payload << "\n" << d.log();
    EXPECT_EQ(reply->message["type"], "error") << reply->message.dump();
    EXPECT_EQ(reply->message["payload"]["code"], "bad_message") << reply->message.dump();
  }
  EXPECT_TRUE(d.running());
}

// `secbox run | tee log` stopped with Ctrl-C: tee goes first. The daemon
// used to die of SIGPIPE at its next log line, leaving its database behind.
TEST_F(HostileCloudE2E, AClosedStandardOutputCostsOnlyLogLines) {
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start({"run"}, /*piped=*/true);
  std::string seen;
  for (int i = 0; i < 300 && seen.find("The cloud welcomed the box.") == std::string::npos; ++i) {
    seen += d.drain_pipe();
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(seen.find("The cloud welcomed the box."), std::string::npos) << seen;
  d.close_pipe();
  // Log lines follow: a reload, and the tunnel closed by the cloud.
  d.signal(SIGHUP);
  ASSERT_TRUE(sim->close_device(1011, "try again"));
  ASSERT_TRUE(sim->wait_for(
      [](const cloudsim::Received& r) {
        return r.session == 2 && r.message.value("type", "") == "hello";
      },
      30s))
      << "the box came back after its log reader went away";
  EXPECT_TRUE(d.running());
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(15s), 0) << "a clean stop, its database stopped too";
}

}  // namespace
}  // namespace secbox
