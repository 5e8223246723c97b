// Frigate's events into the outbound queue: each once, across restarts (the
// cursor is persisted after the queue has them, and clientIds make overlaps
// harmless); Frigate unreachable is logged once, not every poll.
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <set>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "fake_frigate.hpp"
#include "media/frigate_events.hpp"
#include "recording_sink.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "protocol/shapes.hpp"

namespace secbox::media {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::FakeFrigate;
using secbox::testing::run_until;
using secbox::testing::TempDir;

json event(const std::string& id, double start, std::optional<double> end = std::nullopt) {
  json e{{"id", id},
         {"camera", "front"},
         {"label", "person"},
         {"start_time", start},
         {"data", {{"top_score", 0.87}}}};
  e["end_time"] = end ? json(*end) : json(nullptr);
  return e;
}

// The queue's idempotency, as replica::OutboundQueue has it.
using Queue = secbox::testing::RecordingSink;

TEST(FrigateEventParsing, BothScoreLayoutsAndBadEventsSkipped) {
  auto a = parse_frigate_event(event("1700000000.5-abc", 1700000000.5, 1700000003.0));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->client_id, name_uuid("frigate-event:1700000000.5-abc"));
  EXPECT_EQ(a->client_id, parse_frigate_event(event("1700000000.5-abc", 1.0))->client_id)
      << "same event, same id";
  EXPECT_NE(a->client_id, parse_frigate_event(event("1700000000.5-abd", 1700000000.5))->client_id);
  EXPECT_EQ(a->client_id.size(), 36u);
  EXPECT_EQ(a->client_id[14], '5');  // version 5
  EXPECT_EQ(a->data["score"], 0.87);
  EXPECT_EQ(a->data["startTime"], "2023-11-14T22:13:20Z");
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::event_data("frigate_event"), a->data));
  auto old = json{
      {"id", "x1"}, {"camera", "c"}, {"label", "car"}, {"start_time", 5.0}, {"top_score", 0.5}};
  EXPECT_EQ(parse_frigate_event(old)->data["score"], 0.5);
  EXPECT_FALSE(parse_frigate_event(json{{"id", "x"}, {"camera", "c"}, {"start_time", 5.0}}));
  EXPECT_FALSE(parse_frigate_event(
      json{{"id", "a b"}, {"camera", "c"}, {"label", "l"}, {"start_time", 5.0}}));
  EXPECT_FALSE(parse_frigate_event(json::array()));
}

TEST(FrigateEvents, EachEventIsQueuedOnceAcrossRestarts) {
  FakeFrigate frigate;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  frigate.add_event(event("e1", now - 30, now - 20));
  frigate.add_event(event("e2", now - 20));
  frigate.add_event(event("old", now - 7200, now - 7190));  // before the first start's hour
  TempDir dir;
  Queue q;
  FrigateEventsSettings s{frigate.url(), dir.file("frigate-events.json"), 100ms, 100ms, 2s};
  {
    boost::asio::io_context io;
    BlockingPool workers(io, 1);
    FrigateEvents events(io, workers, q, s);
    events.start();
    ASSERT_TRUE(run_until(
        io, [&] { return q.kept.size() == 2; }, 10s));
    run_until(
        io, [] { return false; }, 500ms);  // several more polls
    bool stopped = false;
    events.stop([&] { stopped = true; });
    ASSERT_TRUE(run_until(
        io, [&] { return stopped; }, 10s));
  }
  EXPECT_EQ(static_cast<int>(q.given.size()), 2) << "later polls asked only after the newest event";
  EXPECT_NE(TempDir::read(dir.file("frigate-events.json")).find("\"after\""), std::string::npos);
  frigate.add_event(event("e3", now - 5));
  {
    boost::asio::io_context io;
    BlockingPool workers(io, 1);
    FrigateEvents events(io, workers, q, s);
    events.start();
    ASSERT_TRUE(run_until(
        io, [&] { return q.kept.size() == 3; }, 10s));
    run_until(
        io, [] { return false; }, 300ms);
    bool stopped = false;
    events.stop([&] { stopped = true; });
    ASSERT_TRUE(run_until(
        io, [&] { return stopped; }, 10s));
  }
  EXPECT_EQ(static_cast<int>(q.given.size()), 3) << "the restart did not read the old ones again";
  EXPECT_EQ(q.kept[2].client_id, name_uuid("frigate-event:e3"));
  EXPECT_FALSE(q.kept[0].data.contains("endTime") && q.kept[1].data.contains("endTime"));
}

// Frigate 0.16 behind its nginx (port 5000): a poll of a URL asked a second
// ago would get that answer again for 5 s, without `X-Cache-Bypass: 1`. A new
// event, with whole-second times (JSON integers, as Frigate writes them), is
// queued at the next poll, not 5 s later; an event still in progress too.
TEST(FrigateEvents, ANewEventIsSeenAtTheNextPollThroughNginxsCache) {
  FakeFrigate frigate;
  const auto now = static_cast<long long>(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  frigate.add_event(json{{"id", "first"},
                         {"camera", "front"},
                         {"label", "car"},
                         {"start_time", now - 60},
                         {"end_time", now - 50},
                         {"sub_label", nullptr},
                         {"data", {{"top_score", 0.8}}}});
  TempDir dir;
  Queue q;
  boost::asio::io_context io;
  BlockingPool workers(io, 1);
  FrigateEvents events(io, workers, q, {frigate.url(), dir.file("f.json"), 100ms, 100ms, 2s});
  events.start();
  ASSERT_TRUE(run_until(
      io, [&] { return q.kept.size() == 1; }, 10s));
  run_until(
      io, [] { return false; }, 400ms);  // the same URLs asked again
  frigate.add_event(json{{"id", "second"},
                         {"camera", "front"},
                         {"label", "car"},
                         {"start_time", now - 1},
                         {"end_time", nullptr},
                         {"sub_label", "Vecino"},
                         {"data", {{"top_score", 0.9}, {"recognized_license_plate", "ABC123"}}}});
  const auto added = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(
      io, [&] { return q.kept.size() == 2; }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - added, 2s) << "the poll read an answer nginx kept";
  EXPECT_EQ(frigate.cache_hits(), 0);
  EXPECT_EQ(q.kept[1].client_id, name_uuid("frigate-event:second"));
  EXPECT_EQ(q.kept[0].occurred_at,
            format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(now - 60))));
  bool stopped = false;
  events.stop([&] { stopped = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return stopped; }, 10s));
}

// 250 events since the cursor, as after an outage: Frigate answers at most
// `limit`, so one request cannot read them. Three share a start time (the
// same frame) across the first page's end, three more across a later one.
std::vector<json> outage(double now) {
  std::vector<json> all;
  for (int i = 0; i < 250; ++i) {
    double t = now - 3000 + i * 10;
    if (i == 98 || i == 100) t = now - 3000 + 99 * 10;
    if (i == 118 || i == 120) t = now - 3000 + 119 * 10;
    all.push_back(event("ev" + std::to_string(i), t));
  }
  return all;
}

// Every event once, oldest first, whatever the paging.
void expect_all_once_in_order(const Queue& q, const std::vector<json>& all) {
  ASSERT_EQ(q.kept.size(), all.size());
  EXPECT_EQ(static_cast<int>(q.given.size()), static_cast<int>(all.size()))
      << "none was read twice";
  std::set<std::string> want;
  for (const auto& e : all) want.insert(name_uuid("frigate-event:" + e["id"].get<std::string>()));
  std::set<std::string> got;
  for (const auto& a : q.kept) got.insert(a.client_id);
  EXPECT_EQ(got, want);
  for (std::size_t i = 1; i < q.kept.size(); ++i) {
    EXPECT_LE(q.kept[i - 1].occurred_at, q.kept[i].occurred_at) << i;
  }
}

void drain(FakeFrigate& frigate, FrigateEventsSettings s, Queue& q, std::size_t want) {
  boost::asio::io_context io;
  BlockingPool workers(io, 1);
  FrigateEvents events(io, workers, q, std::move(s));
  events.start();
  ASSERT_TRUE(run_until(
      io, [&] { return q.kept.size() >= want; }, 20s))
      << q.kept.size() << " of " << want;
  run_until(
      io, [] { return false; }, 300ms);  // later polls find nothing new
  bool stopped = false;
  events.stop([&] { stopped = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return stopped; }, 10s));
  (void)frigate;
}

// 250 events waiting in a fake Frigate; its log lines are kept.
class FrigateOutage : public ::testing::Test {
 protected:
  FakeFrigate frigate;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::vector<json> all = outage(now);
  std::vector<std::string> lines;
  TempDir dir;
  Queue q;
  FrigateEventsSettings settings{frigate.url(), dir.file("f.json"), 100ms, 100ms, 2s};

  void SetUp() override {
    for (const auto& e : all) frigate.add_event(e);
    log::set_sink([&](std::string_view l) { lines.emplace_back(l); });
  }
  void TearDown() override { log::set_sink(nullptr); }
  int said(const std::string& needle) const {
    int n = 0;
    for (const auto& l : lines) n += l.find(needle) != std::string::npos;
    return n;
  }
};

TEST_F(FrigateOutage, ALongerOutageThanAPageIsReadWholeOldestFirst) {
  drain(frigate, settings, q, all.size());
  expect_all_once_in_order(q, all);
  EXPECT_GE(frigate.event_queries().size(), 3u) << "paged";
  EXPECT_NE(TempDir::read(dir.file("f.json"))
                .find(std::to_string(static_cast<long long>(now - 3000 + 249 * 10))),
            std::string::npos);
}

TEST_F(FrigateOutage, AReleaseThatAnswersNewestFirstIsPagedBackwards) {
  frigate.ignore_sort();
  settings.hold = 120;  // less than the outage: two polls, the newest read again by the second
  drain(frigate, settings, q, all.size());
  expect_all_once_in_order(q, all);
  EXPECT_EQ(said("newest first"), 1);
}

TEST_F(FrigateOutage, PagingBackFartherThanAPollMayIsLoggedAndMovesOn) {
  frigate.ignore_sort();
  settings.max_pages = 2;  // 200 events back, of 250
  drain(frigate, settings, q, 150);
  EXPECT_LT(q.kept.size(), all.size());
  EXPECT_GE(said("the oldest are skipped"), 1);
  EXPECT_EQ(q.kept.back().client_id, name_uuid("frigate-event:ev249")) << "the newest still arrive";
}

TEST(FrigateEvents, UnreachableIsAStateLoggedOnceNotAStorm) {
  std::vector<std::string> lines;
  log::set_sink([&](std::string_view l) { lines.emplace_back(l); });
  TempDir dir;
  Queue q;
  boost::asio::io_context io;
  BlockingPool workers(io, 1);
  FrigateEvents events(io, workers, q, {"http://127.0.0.1:1", dir.file("f.json"), 50ms, 50ms, 1s});
  events.start();
  run_until(
      io, [] { return false; }, 1s);  // ~20 polls
  EXPECT_FALSE(events.reachable());
  int warnings = 0;
  for (const auto& l : lines) warnings += l.find("cannot be read") != std::string::npos;
  EXPECT_EQ(warnings, 1);
  bool stopped = false;
  events.stop([&] { stopped = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return stopped; }, 10s));
  log::set_sink(nullptr);
}

}  // namespace
}  // namespace secbox::media

namespace secbox::media {
namespace {

// A car as Frigate 0.16 keeps it while LPR refines its plate: sub_label at the
// top, the plate and its score under data.
json car(const std::string& id, double start, const std::string& plate, double score,
         std::optional<double> end = std::nullopt, const std::string& sub_label = "") {
  json e{{"id", id},
         {"camera", "front"},
         {"label", "car"},
         {"start_time", start},
         {"sub_label", sub_label.empty() ? json(nullptr) : json(sub_label)},
         {"data",
          {{"top_score", 0.9},
           {"score", 0.88},
           {"type", "object"},
           {"recognized_license_plate", plate},
           {"recognized_license_plate_score", score}}}};
  if (!sub_label.empty()) e["data"]["sub_label_score"] = 0.97;
  e["end_time"] = end ? json(*end) : json(nullptr);
  return e;
}

TEST(FrigateEventParsing, PlatesAndSubLabelsAsFrigate016HasThem) {
  auto p = parse_frigate_event(car("1733300000.1-abc", 1733300000.1, "ABC123", 0.93));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->id, "1733300000.1-abc");
  EXPECT_EQ(p->label, "car");
  EXPECT_EQ(p->plate, "ABC123");
  EXPECT_DOUBLE_EQ(p->plate_score, 0.93);
  EXPECT_TRUE(p->in_progress);
  EXPECT_TRUE(p->sub_label.empty());
  auto known = parse_frigate_event(car("x", 5.0, "ABC123", 0.9, 9.0, "b_1"));
  EXPECT_EQ(known->sub_label, "b_1");
  EXPECT_DOUBLE_EQ(known->sub_label_score, 0.97);
  EXPECT_FALSE(known->in_progress);
  // MQTT's [name, score] form, and junk where a plate should be.
  auto mqtt = json{{"id", "y"},
                   {"camera", "c"},
                   {"label", "person"},
                   {"start_time", 5.0},
                   {"sub_label", json::array({"b_2", 0.91})},
                   {"data", {{"recognized_license_plate", 7}}}};
  auto m = parse_frigate_event(mqtt);
  EXPECT_EQ(m->sub_label, "b_2");
  EXPECT_DOUBLE_EQ(m->sub_label_score, 0.91);
  EXPECT_TRUE(m->plate.empty());
}

TEST(FrigateEvents, APlateRefinedWhileTheCarMovesIsReportedEachTimeAndOnceMoreWhenItEnds) {
  FakeFrigate frigate;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  frigate.add_event(car("car1", now - 2, "A8C-12B", 0.71));
  TempDir dir;
  Queue q;
  FrigateEventsSettings s{frigate.url(), dir.file("frigate-events.json"), 100ms, 100ms, 2s};
  boost::asio::io_context io;
  BlockingPool workers(io, 1);
  std::vector<ParsedEvent> seen;
  FrigateEvents events(io, workers, q, s, [&](const ParsedEvent& e) { seen.push_back(e); });
  events.start();
  auto saw = [&](const std::string& plate, bool in_progress) {
    return std::any_of(seen.begin(), seen.end(), [&](const ParsedEvent& e) {
      return e.id == "car1" && e.plate == plate && e.in_progress == in_progress;
    });
  };
  ASSERT_TRUE(run_until(
      io, [&] { return saw("A8C-12B", true); }, 10s));
  frigate.update_event(car("car1", now - 2, "ABC-123", 0.93));
  ASSERT_TRUE(run_until(
      io, [&] { return saw("ABC-123", true); }, 10s))
      << "the refined plate, still in progress";
  frigate.update_event(car("car1", now - 2, "ABC-123", 0.95, now, "b_1"));
  ASSERT_TRUE(run_until(
      io, [&] { return saw("ABC-123", false); }, 10s))
      << "the final state, read by id";
  EXPECT_EQ(frigate.event_reads(), std::vector<std::string>{"car1"});
  const auto last =
      std::find_if(seen.rbegin(), seen.rend(), [](const ParsedEvent& e) { return !e.in_progress; });
  EXPECT_EQ(last->sub_label, "b_1");
  run_until(
      io, [] { return false; }, 400ms);
  EXPECT_EQ(frigate.event_reads().size(), 1u) << "an ended event is read by id once";
  EXPECT_EQ(q.kept.size(), 1u) << "and queued once as a frigate_event";
  bool stopped = false;
  events.stop([&] { stopped = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return stopped; }, 10s));
}

}  // namespace
}  // namespace secbox::media
