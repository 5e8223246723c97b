#include <gtest/gtest.h>

#include "tunnel/dispatcher.hpp"

namespace secbox::tunnel {
namespace {

using json = nlohmann::json;

class DispatcherTest : public ::testing::Test {
 protected:
  std::vector<json> sent;
  MessageIds ids;
  Dispatcher d{[this](const std::string& text) {
                 sent.push_back(json::parse(text));
                 return true;
               },
               ids};
};

TEST_F(DispatcherTest, RequestGetsExactlyOneReplyWithRe) {
  d.on_request("jwt.rotate", [](const Envelope&, Reply r) {
    r.send("ack");
    r.send("ack");             // ignored
    r.error("internal", "x");  // ignored
  });
  d.dispatch(R"({"v":1,"type":"jwt.rotate","id":"c-3","ts":"t"})");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["type"], "ack");
  EXPECT_EQ(sent[0]["re"], "c-3");
  EXPECT_EQ(sent[0]["v"], 1);
  EXPECT_TRUE(sent[0]["ts"].get<std::string>().back() == 'Z');
}

TEST_F(DispatcherTest, DroppedReplyBecomesAnInternalError) {
  d.on_request("metrics.get", [](const Envelope&, Reply) {});
  d.dispatch(R"({"v":1,"type":"metrics.get","id":"c-11","ts":"t"})");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["type"], "error");
  EXPECT_EQ(sent[0]["re"], "c-11");
  EXPECT_EQ(sent[0]["payload"]["code"], "internal");
}

TEST_F(DispatcherTest, ReplyCanComeLater) {
  std::optional<Reply> held;
  d.on_request("exec.run", [&](const Envelope&, Reply r) { held = r; });
  d.dispatch(R"({"v":1,"type":"exec.run","id":"c-9","ts":"t"})");
  EXPECT_TRUE(sent.empty());
  held->send("exec.accepted", {{"jobId", "job_1"}});
  held.reset();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["type"], "exec.accepted");
}

TEST_F(DispatcherTest, ReleasedReplySendsNothing) {
  d.on_request("snapshot.unit", [](const Envelope&, Reply r) { Dispatcher::release(r); });
  d.dispatch(R"({"v":1,"type":"snapshot.unit","id":"c-1","ts":"t","payload":{"chunk":1,"chunks":2}})");
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

}  // namespace
}  // namespace secbox::tunnel
