// Frigate's events into the outbound queue: each once, across restarts (the
// cursor is persisted after the queue has them, and clientIds make overlaps
// harmless); Frigate unreachable is logged once, not every poll.
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <set>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "fake_frigate.hpp"
#include "media/frigate_events.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "tunnel/shapes.hpp"

namespace secbox::media {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::FakeFrigate;
using secbox::testing::run_until;
using secbox::testing::TempDir;

json event(const std::string& id, double start, std::optional<double> end = std::nullopt) {
  json e{{"id", id}, {"camera", "front"}, {"label", "person"}, {"start_time", start}, {"data", {{"top_score", 0.87}}}};
  e["end_time"] = end ? json(*end) : json(nullptr);
  return e;
}

// The queue's idempotency, as replica::OutboundQueue has it.
struct Queue {
  std::set<std::string> ids;
  std::vector<json> accepted;
  int calls = 0;
  QueueEvent hook() {
    return [this](const std::string& id, const std::string& at, json data, std::function<void(bool)> done) {
      ++calls;
      if (ids.insert(id).second) accepted.push_back({{"clientId", id}, {"occurredAt", at}, {"data", data}});
      done(true);
    };
  }
};

TEST(FrigateEventParsing, BothScoreLayoutsAndBadEventsSkipped) {
  auto a = parse_frigate_event(event("1700000000.5-abc", 1700000000.5, 1700000003.0));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->client_id, name_uuid("frigate-event:1700000000.5-abc"));
  EXPECT_EQ(a->client_id, parse_frigate_event(event("1700000000.5-abc", 1.0))->client_id) << "same event, same id";
  EXPECT_NE(a->client_id, parse_frigate_event(event("1700000000.5-abd", 1700000000.5))->client_id);
  EXPECT_EQ(a->client_id.size(), 36u);
  EXPECT_EQ(a->client_id[14], '5');  // version 5
  EXPECT_EQ(a->data["score"], 0.87);
  EXPECT_EQ(a->data["startTime"], "2023-11-14T22:13:20Z");
  EXPECT_FALSE(tunnel::shapes::check(*tunnel::shapes::event_data("frigate_event"), a->data));
  auto old = json{{"id", "x1"}, {"camera", "c"}, {"label", "car"}, {"start_time", 5.0}, {"top_score", 0.5}};
  EXPECT_EQ(parse_frigate_event(old)->data["score"], 0.5);
  EXPECT_FALSE(parse_frigate_event(json{{"id", "x"}, {"camera", "c"}, {"start_time", 5.0}}));
  EXPECT_FALSE(parse_frigate_event(json{{"id", "a b"}, {"camera", "c"}, {"label", "l"}, {"start_time", 5.0}}));
  EXPECT_FALSE(parse_frigate_event(json::array()));
}

TEST(FrigateEvents, EachEventIsQueuedOnceAcrossRestarts) {
  FakeFrigate frigate;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  frigate.add_event(event("e1", now - 30, now - 20));
  frigate.add_event(event("e2", now - 20));
  frigate.add_event(event("old", now - 7200, now - 7190));  // before the first start's hour
  TempDir dir;
  Queue q;
  FrigateEventsSettings s{frigate.url(), dir.file("frigate-events.json"), 100ms, 100ms, 2s};
  {
    boost::asio::io_context io;
    BlockingPool workers(io, 1);
    FrigateEvents events(io, workers, s, q.hook());
    events.start();
    ASSERT_TRUE(run_until(io, [&] { return q.accepted.size() == 2; }, 10s));
    run_until(io, [] { return false; }, 500ms);  // several more polls
    bool stopped = false;
    events.stop([&] { stopped = true; });
    ASSERT_TRUE(run_until(io, [&] { return stopped; }, 10s));
  }
  EXPECT_EQ(q.calls, 2) << "later polls asked only after the newest event";
  EXPECT_NE(TempDir::read(dir.file("frigate-events.json")).find("\"after\""), std::string::npos);
  frigate.add_event(event("e3", now - 5));
  {
    boost::asio::io_context io;
    BlockingPool workers(io, 1);
    FrigateEvents events(io, workers, s, q.hook());
    events.start();
    ASSERT_TRUE(run_until(io, [&] { return q.accepted.size() == 3; }, 10s));
    run_until(io, [] { return false; }, 300ms);
    bool stopped = false;
    events.stop([&] { stopped = true; });
    ASSERT_TRUE(run_until(io, [&] { return stopped; }, 10s));
  }
  EXPECT_EQ(q.calls, 3) << "the restart did not read the old ones again";
  EXPECT_EQ(q.accepted[2]["clientId"], name_uuid("frigate-event:e3"));
  EXPECT_FALSE(q.accepted[0]["data"].contains("endTime") && q.accepted[1]["data"].contains("endTime"));
}

TEST(FrigateEvents, UnreachableIsAStateLoggedOnceNotAStorm) {
  std::vector<std::string> lines;
  log::set_sink([&](std::string_view l) { lines.emplace_back(l); });
  TempDir dir;
  Queue q;
  boost::asio::io_context io;
  BlockingPool workers(io, 1);
  FrigateEvents events(io, workers, {"http://127.0.0.1:1", dir.file("f.json"), 50ms, 50ms, 1s}, q.hook());
  events.start();
  run_until(io, [] { return false; }, 1s);  // ~20 polls
  EXPECT_FALSE(events.reachable());
  int warnings = 0;
  for (const auto& l : lines) warnings += l.find("cannot be read") != std::string::npos;
  EXPECT_EQ(warnings, 1);
  bool stopped = false;
  events.stop([&] { stopped = true; });
  ASSERT_TRUE(run_until(io, [&] { return stopped; }, 10s));
  log::set_sink(nullptr);
}

}  // namespace
}  // namespace secbox::media
