#include <gtest/gtest.h>

#include <stdexcept>

#include <boost/asio/io_context.hpp>

#include "common/log.hpp"
#include "run_loop.hpp"
#include "protocol/dispatcher.hpp"

namespace secbox::protocol {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::run_until;

class DispatcherTest : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  std::vector<json> sent;
  bool up = true;
  MessageIds ids;
  Dispatcher d{io,
               [this](const std::string& text) {
                 if (!up) return false;
                 sent.push_back(json::parse(text));
                 return true;
               },
               ids};
};

TEST_F(DispatcherTest, RequestGetsExactlyOneReplyWithRe) {
  d.on_request("jwt.rotate", [](const Envelope&, Reply r) {
    r.send("ack");
    r.send("ack");                      // ignored
    r.error(ErrorCode::internal, "x");  // ignored
  });
  d.dispatch(R"({"v":1,"type":"jwt.rotate","id":"c-3","ts":"t"})");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["type"], "ack");
  EXPECT_EQ(sent[0]["re"], "c-3");
  EXPECT_EQ(sent[0]["v"], 1);
  EXPECT_TRUE(sent[0]["ts"].get<std::string>().back() == 'Z');
}

// Two components registering one type is a wiring error, said at once: the
// one attached last used to answer, silently (jwt.rotate had two).
TEST_F(DispatcherTest, ASecondHandlerForATypeIsAWiringError) {
  d.on_request("jwt.rotate", [](const Envelope&, Reply r) { r.send("ack"); });
  EXPECT_THROW(d.on_request("jwt.rotate", [](const Envelope&, Reply r) { r.send("ack"); }),
               std::logic_error);
  d.on_notice("events.ack", [](const Envelope&) {});
  EXPECT_THROW(d.on_notice("events.ack", [](const Envelope&) {}), std::logic_error);
  d.dispatch(R"({"v":1,"type":"jwt.rotate","id":"c-9","ts":"t"})");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["type"], "ack") << "the first handler stays";
}

TEST_F(DispatcherTest, DroppedReplyBecomesAnInternalError) {
  d.on_request("metrics.get", [](const Envelope&, Reply) {});
  d.dispatch(R"({"v":1,"type":"metrics.get","id":"c-11","ts":"t"})");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["type"], "error");
  EXPECT_EQ(sent[0]["re"], "c-11");
  EXPECT_EQ(sent[0]["payload"]["code"], "internal");
}

// A module's Error goes out with its code when §4.1 has it, else as
// `internal`: the cloud never sees a spelling the contract does not list.
TEST_F(DispatcherTest, AModulesErrorIsAnsweredWithAContractCode) {
  d.on_request("metrics.get", [](const Envelope&, Reply r) {
    r.error(Error{Errc::not_found, "no such thing"});
  });
  d.on_request("health.get", [](const Envelope&, Reply r) {
    r.error(Error{Errc::database, "the server went away"});
  });
  d.dispatch(R"({"v":1,"type":"metrics.get","id":"c-1","ts":"t"})");
  d.dispatch(R"({"v":1,"type":"health.get","id":"c-2","ts":"t"})");
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0]["payload"]["code"], "not_found");
  EXPECT_EQ(sent[0]["payload"]["message"], "no such thing");
  EXPECT_EQ(sent[1]["payload"]["code"], "internal");
  EXPECT_EQ(sent[1]["payload"]["message"], "the server went away");
}

// What a component asks of the transport through the Router: binary frames
// (refused when the transport has none), backpressure, a reconnect.
TEST(DispatcherTransport, BinaryFramesBackpressureAndReconnectReachTheTransport) {
  boost::asio::io_context io;
  MessageIds ids;
  std::vector<std::string> frames;
  bool writable = true;
  std::vector<std::string> reconnects;
  Dispatcher d{io,
               Transport{[](const std::string&) { return true; },
                         [&](const std::string& f) {
                           frames.push_back(f);
                           return true;
                         },
                         [&] { return writable; },
                         [&](const std::string& why) { reconnects.push_back(why); }},
               ids};
  Router& router = d;
  BinaryHeader h;
  h.type = BinaryType::frigate_frame;
  h.stream = "s-1";
  h.seq = 7;
  ASSERT_TRUE(router.send_binary(h, "JPEG"));
  ASSERT_EQ(frames.size(), 1u);
  auto f = decode_binary(frames[0]);
  ASSERT_TRUE(f);
  EXPECT_EQ(f.value().body, "JPEG");
  EXPECT_EQ(f.value().header.seq, 7u);
  EXPECT_TRUE(router.writable());
  writable = false;
  EXPECT_FALSE(router.writable());
  router.reconnect("a batch was never acknowledged");
  EXPECT_EQ(reconnects, std::vector<std::string>{"a batch was never acknowledged"});

  Dispatcher text_only{io, [](const std::string&) { return true; }, ids};
  EXPECT_FALSE(text_only.send_binary(h, "JPEG"));
  EXPECT_TRUE(text_only.writable());
  text_only.reconnect("nothing to restart");  // no transport hook: nothing happens
}

// A reply that comes after its session is gone (a database answer after a
// re-pairing): dropped and logged, and what the session owned (its sender,
// its message ids) is never touched. ASan sees it if it were.
TEST(DispatcherLifetime, AReplyAfterTheSessionIsGoneIsDroppedNotAUseAfterFree) {
  boost::asio::io_context io;
  std::vector<std::string> lines;
  log::set_sink([&](std::string_view l) { lines.emplace_back(l); });
  auto sent = std::make_unique<std::vector<std::string>>();
  auto ids = std::make_unique<MessageIds>();
  auto session = std::make_unique<Dispatcher>(
      io,
      [out = sent.get()](const std::string& text) {
        out->push_back(text);
        return true;
      },
      *ids);
  std::optional<Reply> late, dropped;
  session->on_request("jwt.rotate", [&](const Envelope&, Reply r) { late = r; });
  session->on_request("metrics.get", [&](const Envelope&, Reply r) { dropped = r; });
  session->dispatch(R"({"v":1,"type":"jwt.rotate","id":"c-1","ts":"t"})");
  session->dispatch(R"({"v":1,"type":"metrics.get","id":"c-2","ts":"t"})");
  session.reset();
  ids.reset();
  sent.reset();
  late->send("ack");
  dropped.reset();  // unanswered, and nobody left to answer
  late.reset();
  log::set_sink(nullptr);
  int said = 0;
  for (const auto& l : lines) said += l.find("it is dropped") != std::string::npos;
  EXPECT_EQ(said, 1);
}

TEST_F(DispatcherTest, ReplyCanComeLater) {
  std::optional<Reply> held;
  d.on_request("exec.run", [&](const Envelope&, Reply r) { held = r; });
  d.dispatch(R"({"v":1,"type":"exec.run","id":"c-9","ts":"t",
                 "payload":{"tool":"network","command":"ping","args":{"host":"192.0.2.1"}}})");
  EXPECT_TRUE(sent.empty());
  held->send("exec.accepted", {{"jobId", "job_1"}});
  held.reset();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["type"], "exec.accepted");
}

TEST_F(DispatcherTest, ReleasedReplySendsNothing) {
  d.on_request(
      "snapshot.unit", [](const Envelope&, Reply r) { r.release(); }, PayloadCheck::by_handler);
  d.dispatch(
      R"({"v":1,"type":"snapshot.unit","id":"c-1","ts":"t","payload":{"chunk":1,"chunks":2}})");
  EXPECT_TRUE(sent.empty());
}

TEST_F(DispatcherTest, UnknownTypesAreIgnoredAndNoticesNeverAnswered) {
  int welcomes = 0;
  d.on_notice("welcome", [&](const Envelope&) { ++welcomes; });
  d.dispatch(R"({"v":1,"type":"future.thing","id":"c-1","ts":"t"})");
  d.dispatch(R"({"v":1,"type":"welcome","id":"c-2","ts":"t","re":"b-1"})");
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(welcomes, 1);
}

TEST_F(DispatcherTest, MalformedMessagesGetBadMessage) {
  d.dispatch("not json at all");
  d.dispatch(R"({"v":2,"type":"x","id":"c-5"})");
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0]["type"], "error");
  EXPECT_EQ(sent[0]["payload"]["code"], "bad_message");
  EXPECT_FALSE(sent[0].contains("re"));
  EXPECT_EQ(sent[1]["re"], "c-5");
}

TEST_F(DispatcherTest, ThousandMalformedMessagesEachAnswered) {
  for (int i = 0; i < 1000; ++i) d.dispatch("{\"v\":1,\"id\":\"m" + std::to_string(i) + "\"}");
  ASSERT_EQ(sent.size(), 1000u);
  EXPECT_EQ(sent[999]["re"], "m999");
}

TEST_F(DispatcherTest, RequestPayloadThatDoesNotFitIsRefusedNamingTheField) {
  int handled = 0;
  d.on_request("frigate.stream.start", [&](const Envelope&, Reply r) {
    ++handled;
    r.send("frigate.stream.started", {{"streamId", "st_1"}});
  });
  d.dispatch(
      R"({"v":1,"type":"frigate.stream.start","id":"c-1","ts":"t","payload":{"camera":"gate","fps":60}})");
  d.dispatch(R"({"v":1,"type":"frigate.stream.start","id":"c-2","ts":"t","payload":{"fps":5}})");
  d.dispatch(
      R"({"v":1,"type":"frigate.stream.start","id":"c-3","ts":"t","payload":{"camera":"gate","fps":5}})");
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0]["payload"]["code"], "invalid_args");
  EXPECT_EQ(sent[0]["payload"]["message"], "fps must be between 1 and 30");
  EXPECT_EQ(sent[1]["payload"]["message"], "camera is required");
  EXPECT_EQ(sent[2]["type"], "frigate.stream.started");
  EXPECT_EQ(handled, 1);
}

TEST_F(DispatcherTest, HandlerCanTakeOverTheCheck) {
  int handled = 0;
  d.on_request(
      "snapshot.unit",
      [&](const Envelope&, Reply r) {
        ++handled;
        r.release();
      },
      PayloadCheck::by_handler);
  d.dispatch(R"({"v":1,"type":"snapshot.unit","id":"c-1","ts":"t","payload":{"chunk":"one"}})");
  EXPECT_EQ(handled, 1);
  EXPECT_TRUE(sent.empty());
}

TEST_F(DispatcherTest, OwnRequestGetsTheReplyMatchedByRe) {
  std::vector<Result<Envelope>> got;
  auto id = d.request("hello", {{"deviceId", "d"}}, 5s,
                      [&](Result<Envelope> r) { got.push_back(std::move(r)); });
  ASSERT_TRUE(id);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["id"], *id);
  EXPECT_FALSE(sent[0].contains("re"));
  EXPECT_EQ(d.pending(), 1u);
  // A reply to something else does not complete it; the right one does, once.
  d.dispatch(R"({"v":1,"type":"welcome","id":"c-1","ts":"t","re":"b-999","payload":{}})");
  EXPECT_TRUE(got.empty());
  const std::string reply = R"({"v":1,"type":"welcome","id":"c-2","ts":"t","re":")" + *id +
                            R"(","payload":{"serverTime":"2026-11-22T10:00:00Z"}})";
  d.dispatch(reply);
  d.dispatch(reply);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0]);
  EXPECT_EQ(got[0].value().type, "welcome");
  EXPECT_EQ(d.pending(), 0u);
}

TEST_F(DispatcherTest, OwnRequestAnsweredWithAnErrorCarriesItsCode) {
  std::optional<Result<Envelope>> got;
  auto id = d.request("events.batch", {{"events", json::array()}}, 5s,
                      [&](Result<Envelope> r) { got = std::move(r); });
  d.dispatch(R"({"v":1,"type":"error","id":"c-2","ts":"t","re":")" + *id +
             R"(","payload":{"code":"busy","message":"later"}})");
  ASSERT_TRUE(got);
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, Errc::refused);
  EXPECT_EQ(got->error().message, "busy: later");
}

TEST_F(DispatcherTest, OwnRequestTimesOutOnceAndALateReplyIsNotDelivered) {
  int calls = 0;
  std::string code;
  auto id = d.request("events.batch", {{"events", json::array()}}, 50ms, [&](Result<Envelope> r) {
    ++calls;
    code = r ? "" : to_string(r.error().code);
  });
  ASSERT_TRUE(run_until(
      io, [&] { return calls > 0; }, 5s));
  EXPECT_EQ(code, "timeout");
  int late = 0;
  d.on_notice("events.ack", [&](const Envelope&) { ++late; });
  d.dispatch(R"({"v":1,"type":"events.ack","id":"c-2","ts":"t","re":")" + *id +
             R"(","payload":{"clientIds":[]}})");
  io.restart();
  io.run_for(100ms);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(late, 1);  // a late reply goes to the type's notice handler, if any
}

TEST_F(DispatcherTest, ClosedTunnelFailsEveryPendingRequestAndRefusesNewOnes) {
  std::vector<std::string> codes;
  for (int i = 0; i < 3; ++i) {
    d.request("events.batch", {{"events", json::array()}}, 5s, [&](Result<Envelope> r) {
      codes.push_back(r ? "ok" : std::string(to_string(r.error().code)));
    });
  }
  d.fail_pending("the tunnel closed");
  EXPECT_EQ(codes, (std::vector<std::string>{"disconnected", "disconnected", "disconnected"}));
  EXPECT_EQ(d.pending(), 0u);
  up = false;
  bool called = false;
  EXPECT_FALSE(d.request("events.batch", {}, 5s, [&](Result<Envelope>) { called = true; }));
  io.restart();
  io.run_for(50ms);
  EXPECT_FALSE(called);
}

TEST_F(DispatcherTest, DestroyedWithRequestsPendingIsSafe) {
  auto other = std::make_unique<Dispatcher>(
      io, [](const std::string&) { return true; }, ids);
  other->request("hello", {}, 10ms, [](Result<Envelope>) { FAIL() << "called after destruction"; });
  other.reset();
  io.restart();
  io.run_for(50ms);
}

}  // namespace
}  // namespace secbox::protocol
