// The tunnel client against the cloud simulator: real TLS and WebSocket on
// 127.0.0.1. Back-off and heartbeat periods are shortened through the
// settings; every wait is bounded.
#include <dirent.h>
#include <malloc.h>

#include <gtest/gtest.h>

#include "cloudsim/cloudsim.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "protocol/dispatcher.hpp"
#include "tunnel/tunnel_client.hpp"

#if defined(__SANITIZE_ADDRESS__)
// From the ASan runtime (GCC ships no header for it).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace secbox::tunnel {
namespace {

using namespace std::chrono_literals;
using cloudsim::CloudSim;
using secbox::testing::run_until;
using secbox::testing::TempDir;

int open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// Bytes of heap in use by the whole process (the simulator's threads too).
std::size_t heap_in_use() {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks;
#endif
}

class TunnelTest : public ::testing::Test {
 protected:
  TempDir dir;
  boost::asio::io_context io;
  std::unique_ptr<CloudSim> sim;
  std::optional<std::string> token;
  int opens = 0, rejections = 0;
  std::vector<std::uint16_t> closes;
  std::vector<std::string> texts;
  std::unique_ptr<TunnelClient> client;

  void make_sim(cloudsim::CertMode mode = cloudsim::CertMode::trusted) {
    sim =
        std::make_unique<CloudSim>(cloudsim::Options{dir.path(), 0, mode, std::chrono::hours(24)});
    token = sim->issue_token("dev_1");
  }

  TunnelSettings settings() {
    TunnelSettings s;
    s.gateway_url = sim->gateway_url();
    s.device_id = "dev_1";
    s.version = "0.1.0-test";
    s.ca_file = sim->ca_file();
    s.backoff_initial = 20ms;
    s.backoff_max = 200ms;
    return s;
  }

  void make_client(TunnelSettings s) {
    TunnelHooks hooks;
    hooks.token = [this] { return token; };
    hooks.on_open = [this] {
      ++opens;
      client->send_text(R"({"v":1,"type":"hello","id":"b-h)" + std::to_string(opens) +
                        R"(","ts":"2026-11-22T10:00:00Z","payload":{"deviceId":"dev_1"}})");
    };
    hooks.on_text = [this](std::string_view t) { texts.emplace_back(t); };
    hooks.on_close = [this](std::uint16_t code) { closes.push_back(code); };
    hooks.on_token_rejected = [this] { ++rejections; };
    client = std::make_unique<TunnelClient>(io, std::move(s), std::move(hooks));
  }

  // Closes the box's session from the cloud's side. The box sees the upgrade
  // answered a moment before the simulator's thread registers the session, so
  // retry until there is one to close.
  bool cut(std::uint16_t code, const std::string& reason) {
    bool done = false;
    return run_until(
        io, [&] { return done || (done = sim->close_device(code, reason)); }, 10s);
  }

  void TearDown() override {
    if (client) {
      bool stopped = false;
      client->stop([&] { stopped = true; });
      EXPECT_TRUE(run_until(
          io, [&] { return stopped; }, 10s));
    }
  }
};

TEST_F(TunnelTest, ConnectsWithTokenHeadersAndSubprotocolAndSendsHelloFirst) {
  make_sim();
  make_client(settings());
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1 && !texts.empty(); }, 10s));
  EXPECT_EQ(client->state(), TunnelState::connected);
  EXPECT_EQ(sim->last_bearer(), *token);
  EXPECT_EQ(sim->last_subprotocol(), "secbox.v1");
  EXPECT_EQ(sim->last_device_header(), "dev_1");
  auto first = sim->wait_for([](const cloudsim::Received&) { return true; }, 1s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->message["type"], "hello");
  EXPECT_NE(texts[0].find("\"type\":\"welcome\""), std::string::npos);
}

TEST_F(TunnelTest, RejectedTokenWaitsForRotationThenReconnectsWithTheNewOne) {
  make_sim();
  const auto good = *token;
  token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.bm90LWlzc3VlZA";
  make_client(settings());
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return rejections == 1; }, 10s));
  EXPECT_EQ(client->state(), TunnelState::token_rejected);
  EXPECT_EQ(closes.back(), 4401);
  // Never reconnects with the rejected token.
  run_until(
      io, [] { return false; }, 500ms);
  EXPECT_EQ(sim->sessions_rejected(), 1);
  // The gateway upgraded, then closed with 4401: that attempt opened once.
  EXPECT_EQ(opens, 1);
  token = good;
  client->resume();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 2; }, 10s));
  EXPECT_EQ(sim->last_bearer(), good);
  EXPECT_EQ(client->state(), TunnelState::connected);
}

TEST_F(TunnelTest, UntrustedCertificateIsRefused) {
  make_sim(cloudsim::CertMode::untrusted);
  make_client(settings());
  client->start();
  run_until(
      io, [&] { return client->reconnects() >= 2; }, 5s);
  EXPECT_EQ(opens, 0);
  EXPECT_EQ(sim->sessions_opened(), 0);
  EXPECT_GE(client->reconnects(), 2);  // it keeps trying, with backoff
}

TEST_F(TunnelTest, CertificateForAnotherHostIsRefused) {
  make_sim(cloudsim::CertMode::wrong_host);
  make_client(settings());
  client->start();
  run_until(
      io, [&] { return client->reconnects() >= 2; }, 5s);
  EXPECT_EQ(opens, 0);
  EXPECT_EQ(sim->sessions_opened(), 0);
}

TEST_F(TunnelTest, WithoutTheCaFileTheSimulatorIsNotTrusted) {
  make_sim();
  auto s = settings();
  s.ca_file.clear();
  make_client(s);
  client->start();
  run_until(
      io, [&] { return client->reconnects() >= 1; }, 5s);
  EXPECT_EQ(sim->sessions_opened(), 0);
}

TEST_F(TunnelTest, ReconnectsAfterEachOfTwentyCloudRestarts) {
  make_sim();
  make_client(settings());
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1; }, 10s));
  for (int i = 2; i <= 21; ++i) {
    sim->restart();
    ASSERT_TRUE(run_until(
        io, [&] { return opens == i; }, 10s))
        << "restart " << i - 1;
    // The hello goes out from the box's loop: keep running it while waiting.
    ASSERT_TRUE(run_until(
        io,
        [&] {
          return sim
              ->wait_for(
                  [&](const cloudsim::Received& r) {
                    return r.message.value("id", "") == "b-h" + std::to_string(i);
                  },
                  0ms)
              .has_value();
        },
        5s))
        << "no hello after restart " << i - 1;
  }
  EXPECT_EQ(sim->sessions_opened(), 21);
}

TEST_F(TunnelTest, FileDescriptorsDoNotGrowAcross200Reconnects) {
  make_sim();
  auto s = settings();
  s.backoff_max = 30ms;
  make_client(s);
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1; }, 10s));
  const int fds_before = open_fds();
  for (int i = 2; i <= 201; ++i) {
    ASSERT_TRUE(cut(1011, "test")) << "no session to cut before reconnect " << i - 1;
    ASSERT_TRUE(run_until(
        io, [&] { return opens == i; }, 10s))
        << "reconnect " << i - 1;
  }
  EXPECT_LE(open_fds(), fds_before + 2);
}

TEST_F(TunnelTest, HeapDoesNotGrowAcross200Reconnects) {
  make_sim();
  auto s = settings();
  s.backoff_max = 30ms;
  make_client(s);
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1; }, 10s));
  auto reconnect = [&](int n) {
    return cut(1011, "test") && run_until(
                                    io, [&] { return opens == n; }, 10s);
  };
  // Warm up (buffers, the TLS session cache), then measure the next 200.
  for (int i = 2; i <= 21; ++i) ASSERT_TRUE(reconnect(i)) << "reconnect " << i - 1;
  sim->clear_received();
  closes.clear();
  texts.clear();
  const auto before = heap_in_use();
  for (int i = 22; i <= 221; ++i) {
    ASSERT_TRUE(reconnect(i)) << "reconnect " << i - 1;
    if (i % 50 == 0) {
      sim->clear_received();  // the simulator keeps what it received, the test
      closes.clear();         // what it saw; neither is the box's
      texts.clear();
    }
  }
  sim->clear_received();
  closes.clear();
  texts.clear();
  const auto after = heap_in_use();
  const long long growth = static_cast<long long>(after) - static_cast<long long>(before);
  std::printf("heap in use: %zu bytes before, %zu after 200 reconnects (%+lld)\n", before, after,
              growth);
  // A leaked connection (its buffers alone are tens of KiB) would show as MiBs.
  EXPECT_LT(growth, 256 * 1024);
}

TEST_F(TunnelTest, ANewSimulatorInTheSameFolderStillAcceptsTheToken) {
  // The demo cloud of scripts/run is a process that comes and goes.
  make_sim();
  const auto issued = *token;
  sim.reset();
  sim = std::make_unique<CloudSim>(
      cloudsim::Options{dir.path(), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  make_client(settings());
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1; }, 10s));
  EXPECT_EQ(sim->last_bearer(), issued);
  EXPECT_EQ(rejections, 0);
}

TEST_F(TunnelTest, SilentPeerIsDeclaredDeadAndReplaced) {
  make_sim();
  auto s = settings();
  s.ping_interval = 200ms;
  s.dead_after = 300ms;
  make_client(s);
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1; }, 10s));
  ASSERT_TRUE(run_until(
      io, [&] { return client->rtt().has_value(); }, 5s));
  sim->set_answer_pings(false);
  client->send_text(
      R"({"v":1,"type":"guard.note","id":"b-x","ts":"t"})");  // completes the sim's read
  ASSERT_TRUE(run_until(
      io, [&] { return !closes.empty(); }, 10s));
  sim->set_answer_pings(true);
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 2; }, 10s));
}

TEST_F(TunnelTest, OversizedFrameClosesWith1009AndReconnects) {
  make_sim();
  make_client(settings());
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1; }, 10s));
  sim->send_text(std::string(17u << 20, 'x'));
  ASSERT_TRUE(run_until(
      io, [&] { return !closes.empty(); }, 20s));
  EXPECT_EQ(closes[0], 1009);
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 2; }, 10s));
}

TEST_F(TunnelTest, ReplacedSession4409Reconnects) {
  make_sim();
  make_client(settings());
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1; }, 10s));
  ASSERT_TRUE(cut(4409, "replaced"));
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 2; }, 10s));
  EXPECT_EQ(closes[0], 4409);
  EXPECT_EQ(rejections, 0);
}

TEST_F(TunnelTest, SmallWritesAreCoalescedIntoFewTlsRecords) {
  make_sim();
  make_client(settings());
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1 && !texts.empty(); }, 10s));  // hello answered
  sim->clear_received();
  const long records_before = sim->tls_records_received();
  const std::string pad(120, 'x');
  for (int i = 0; i < 200; ++i) {  // one burst, as a producer on the loop sends
    ASSERT_TRUE(client->send_text(R"({"v":1,"type":"bench.note","id":"b-n)" + std::to_string(i) +
                                  R"(","ts":"2026-11-22T10:00:00Z","payload":{"pad":")" + pad +
                                  R"("}})"));
  }
  ASSERT_TRUE(run_until(
      io, [&] { return sim->received().size() == 200; }, 10s));
  const long records = sim->tls_records_received() - records_before;
  std::printf("200 messages of ~200 bytes arrived in %ld TLS records\n", records);
  // One record per frame part would be 400, one per message 200; websocketpp
  // gathers the burst into one write and Asio's SSL stream packs up to 16
  // buffers (8 messages) into each record: 25 here.
  EXPECT_LE(records, 40);
}

TEST_F(TunnelTest, ThousandMalformedMessagesAnsweredAndTheTunnelStaysUp) {
  make_sim();
  make_client(settings());
  protocol::MessageIds ids;
  protocol::Dispatcher dispatcher(
      io, [this](const std::string& t) { return client->send_text(t); }, ids);
  client->start();
  ASSERT_TRUE(run_until(
      io, [&] { return opens == 1; }, 10s));
  texts.clear();
  for (int i = 0; i < 1000; ++i) {
    sim->send_text(i % 2 ? "not json " + std::to_string(i)
                         : R"({"v":1,"type":"x","id":"bad id )" + std::to_string(i) + "\"}");
  }
  sim->send_text(R"({"v":1,"type":"future.unknown","id":"u-1","ts":"t"})");
  ASSERT_TRUE(run_until(
      io,
      [&] {
        for (; !texts.empty(); texts.erase(texts.begin())) dispatcher.dispatch(texts.front());
        return sim->received().size() >= 1001;  // the hello and 1,000 errors
      },
      20s));
  int bad = 0;
  for (const auto& r : sim->received()) {
    if (r.message.value("type", "") == "error" && r.message["payload"]["code"] == "bad_message")
      ++bad;
  }
  EXPECT_EQ(bad, 1000);
  EXPECT_EQ(client->state(), TunnelState::connected);
  EXPECT_EQ(opens, 1);
}

}  // namespace
}  // namespace secbox::tunnel
