// The Frigate proxy (cloud-protocol §7.2) against a fake Frigate over real
// HTTP: snapshots as binary frames, streams cut out of MJPEG with every frame
// counted, newest-wins drops under backpressure, stops on request, on tunnel
// loss and on keep-alive expiry, and Frigate down answered `unavailable`.
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "fake_frigate.hpp"
#include "media/frigate_proxy.hpp"
#include "run_loop.hpp"
#include "protocol/dispatcher.hpp"
#include "protocol/envelope.hpp"

namespace secbox::media {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::fake_jpeg;
using secbox::testing::FakeFrigate;
using secbox::testing::run_until;

struct Binary {
  protocol::BinaryHeader header;
  std::string body;
};

class FrigateTest : public ::testing::Test {
 protected:
  void make(FrigateSettings s = {}) {
    if (s.base_url == FrigateSettings{}.base_url) s.base_url = frigate.url();
    proxy = std::make_unique<FrigateProxy>(io, d, s);
    d.session_started(json::object());  // the cloud welcomed the box
  }
  void TearDown() override {
    if (!proxy) return;
    bool stopped = false;
    proxy->stop([&] { stopped = true; });
    EXPECT_TRUE(run_until(
        io, [&] { return stopped; }, 10s));
  }
  std::string request(const std::string& type, const json& payload) {
    const std::string id = "c-" + std::to_string(++next_id);
    d.dispatch(json{
        {"v", 1}, {"type", type}, {"id", id}, {"ts", "2026-11-22T10:00:00Z"}, {"payload", payload}}
                   .dump());
    return id;
  }
  std::optional<json> reply_to(const std::string& id, std::chrono::milliseconds limit = 10s) {
    std::optional<json> out;
    run_until(
        io,
        [&] {
          for (const auto& m : texts) {
            if (m.value("re", "") == id) out = m;
          }
          return out.has_value();
        },
        limit);
    return out;
  }
  std::size_t frames_of(const std::string& stream) const {
    std::size_t n = 0;
    for (const auto& b : binaries) n += b.header.stream == stream;
    return n;
  }
  std::string start(const std::string& camera, int fps) {
    const auto id = request("frigate.stream.start", {{"camera", camera}, {"fps", fps}});
    auto r = reply_to(id);
    if (!r || (*r)["type"] != "frigate.stream.started") return {};
    start_ids[(*r)["payload"]["streamId"]] = id;
    return (*r)["payload"]["streamId"];
  }

  FakeFrigate frigate;
  boost::asio::io_context io;
  std::vector<json> texts;
  std::vector<Binary> binaries;
  bool writable = true;
  int next_id = 0;
  std::map<std::string, std::string> start_ids;
  protocol::MessageIds ids;
  // The frames as the tunnel would carry them: binary ones are decoded again,
  // so a frame that does not decode fails the test.
  protocol::Dispatcher d{
      io,
      protocol::Transport{[this](const std::string& text) {
                            texts.push_back(json::parse(text));
                            return true;
                          },
                          [this](const std::string& bytes) {
                            auto f = protocol::decode_binary(bytes);
                            EXPECT_TRUE(f) << "a binary frame that does not decode";
                            if (f)
                              binaries.push_back({f.value().header, std::string(f.value().body)});
                            return true;
                          },
                          [this] { return writable; }, nullptr},
      ids};
  std::unique_ptr<FrigateProxy> proxy;
};

TEST_F(FrigateTest, ASnapshotIsABinaryFrameCarryingRe) {
  make();
  const auto id = request("frigate.snapshot", {{"camera", "front"}, {"height", 360}});
  ASSERT_TRUE(run_until(
      io, [&] { return !binaries.empty(); }, 10s));
  EXPECT_EQ(binaries[0].header.type, protocol::BinaryType::frigate_snapshot_result);
  EXPECT_EQ(binaries[0].header.re, id);
  // Frigate 0.16 scales to `height` (and would ignore `h`, sending the full picture).
  EXPECT_EQ(binaries[0].body, fake_jpeg('r', 360));
  EXPECT_EQ(frigate.targets().front(), "/api/front/latest.jpg?height=360");
  EXPECT_FALSE(reply_to(id, 300ms)) << "a snapshot gets its binary frame and no text reply";
  EXPECT_EQ((*reply_to(request("frigate.snapshot", {{"camera", "garage"}})))["payload"]["code"],
            "not_found");
  EXPECT_EQ(
      (*reply_to(request("frigate.snapshot", {{"camera", "../api/config"}})))["payload"]["code"],
      "invalid_args");
  const auto started =
      reply_to(request("frigate.stream.start", {{"camera", "front"}, {"fps", 5}, {"height", 240}}));
  ASSERT_TRUE(started);
  EXPECT_EQ((*started)["type"], "frigate.stream.started");
  ASSERT_TRUE(run_until(
      io, [&] { return frigate.targets().size() >= 3; }, 5s));
  EXPECT_EQ(frigate.targets().back(), "/api/front?fps=5&height=240");
}

TEST_F(FrigateTest, FrigateDownOrSilentIsUnavailable) {
  FrigateSettings s;
  s.base_url = "http://127.0.0.1:1";  // nothing listens there
  s.answer_timeout = 2s;
  make(s);
  EXPECT_EQ((*reply_to(request("frigate.snapshot", {{"camera", "front"}})))["payload"]["code"],
            "unavailable");
  EXPECT_EQ((*reply_to(request("frigate.stream.start",
                               {{"camera", "front"}, {"fps", 5}})))["payload"]["code"],
            "unavailable");
}

TEST_F(FrigateTest, AFrigateThatNeverAnswersIsUnavailableWithinTheLimit) {
  FrigateSettings s;
  s.answer_timeout = 1500ms;
  make(s);
  auto r = reply_to(request("frigate.snapshot", {{"camera", "slow"}}), 10s);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["payload"]["code"], "unavailable");
}

TEST_F(FrigateTest, AStreamSendsEveryFrameWithItsSeqUntilStopped) {
  make();
  const auto stream = start("front", 20);
  ASSERT_FALSE(stream.empty());
  ASSERT_TRUE(run_until(
      io, [&] { return frames_of(stream) >= 10; }, 10s));
  std::uint64_t expected = 1;
  for (const auto& b : binaries) {
    EXPECT_EQ(b.header.type, protocol::BinaryType::frigate_frame);
    EXPECT_EQ(b.header.re, start_ids[stream]);
    EXPECT_EQ(*b.header.seq, expected++);
    EXPECT_EQ(b.body.size(), 2006u);
  }
  EXPECT_EQ((*reply_to(request("frigate.stream.stop", {{"streamId", stream}})))["type"], "ack");
  run_until(
      io, [] { return false; }, 300ms);
  const auto after_stop = binaries.size();
  run_until(
      io, [] { return false; }, 500ms);
  EXPECT_EQ(binaries.size(), after_stop) << "frames after the stop";
  EXPECT_EQ((*reply_to(request("frigate.stream.stop", {{"streamId", stream}})))["payload"]["code"],
            "not_found");
  EXPECT_EQ((*reply_to(request("frigate.stream.start",
                               {{"camera", "garage"}, {"fps", 5}})))["payload"]["code"],
            "not_found");
}

TEST_F(FrigateTest, UnderBackpressureTheNewestTwoFramesWaitAndSeqShowsTheGap) {
  make();
  const auto stream = start("front", 30);
  ASSERT_FALSE(stream.empty());
  ASSERT_TRUE(run_until(
      io, [&] { return frames_of(stream) >= 3; }, 10s));
  writable = false;
  const auto before = binaries.size();
  run_until(
      io, [] { return false; }, 1s);  // ~30 frames read, none sent
  EXPECT_EQ(binaries.size(), before);
  EXPECT_GE(proxy->stats().frames_dropped, 20u);
  writable = true;
  ASSERT_TRUE(run_until(
      io, [&] { return binaries.size() >= before + 3; }, 5s));
  // The two held frames went first, then live ones; seq jumped over the dropped.
  EXPECT_GT(*binaries[before].header.seq, *binaries[before - 1].header.seq + 10);
  EXPECT_EQ(*binaries[before + 1].header.seq, *binaries[before].header.seq + 1);
}

TEST_F(FrigateTest, AStalledStreamEndsAndMalformedPartsAreSkipped) {
  FrigateSettings s;
  s.stall_timeout = 1s;
  make(s);
  const auto stalled = start("stall", 10);
  ASSERT_FALSE(stalled.empty());
  ASSERT_TRUE(run_until(
      io, [&] { return frames_of(stalled) == 1; }, 5s));
  const auto bad = start("bad", 20);
  ASSERT_FALSE(bad.empty());
  ASSERT_TRUE(run_until(
      io, [&] { return frames_of(bad) >= 5; }, 10s));
  for (const auto& b : binaries) EXPECT_EQ(b.body.substr(0, 2), std::string("\xFF\xD8", 2));
  // The stalled one ended on its own: a stop now finds nothing.
  ASSERT_TRUE(run_until(
                  io, [&] { return false; }, 3s) ||
              true);
  EXPECT_EQ((*reply_to(request("frigate.stream.stop", {{"streamId", stalled}})))["payload"]["code"],
            "not_found");
}

TEST_F(FrigateTest, KeepalivesKeepAStreamAndTheirAbsenceOrATunnelLossStopsIt) {
  FrigateSettings s;
  s.keepalive = 1500ms;
  make(s);
  const auto kept = start("front", 10);
  const auto dropped = start("front", 10);
  ASSERT_FALSE(kept.empty());
  ASSERT_FALSE(dropped.empty());
  for (int i = 0; i < 6; ++i) {
    d.dispatch(json{{"v", 1},
                    {"type", "frigate.stream.keepalive"},
                    {"id", "k-" + std::to_string(i)},
                    {"ts", "t"},
                    {"payload", {{"streamId", kept}}}}
                   .dump());
    run_until(
        io, [] { return false; }, 500ms);
  }
  const auto dropped_frames = frames_of(dropped);
  const auto kept_frames = frames_of(kept);
  run_until(
      io, [] { return false; }, 600ms);
  EXPECT_EQ(frames_of(dropped), dropped_frames)
      << "no keepalive for 1.5 s: the stream should have stopped";
  EXPECT_GT(frames_of(kept), kept_frames);
  d.session_ended();  // the tunnel closed
  run_until(
      io, [] { return false; }, 300ms);
  const auto at_loss = binaries.size();
  run_until(
      io, [] { return false; }, 500ms);
  EXPECT_EQ(binaries.size(), at_loss);
}

}  // namespace
}  // namespace secbox::media
