// Camera ban alarms against a real PostgreSQL replica (bans applied through
// the real sync path) and the real outbound queue: what Frigate 0.16 reports
// (a plate refined while the car moves, misreads, confusions, low scores, one
// event updated ten times, a face) becomes one alarm and one ban_hit each, and
// a guard's answer one visitor_entry. The camera's snapshot comes from the
// fake Frigate over HTTP.
#include "alarms/camera_alarms.hpp"

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "../media/fake_frigate.hpp"
#include "common/ids.hpp"
#include "protocol/dispatcher.hpp"
#include "replica/queue.hpp"
#include "replica/reads.hpp"
#include "replica/sync.hpp"
#include "run_loop.hpp"
#include "sync_messages.hpp"
#include "test_database.hpp"

namespace secbox::alarms {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::FakeFrigate;
using secbox::testing::run_until;
using secbox::testing::TestDatabase;

class CameraAlarmsTest : public ::testing::Test {
 protected:
  TestDatabase db;
  FakeFrigate frigate;
  boost::asio::io_context io;
  BlockingPool workers{io, 2};
  replica::Database database{io, replica::DatabaseSettings{db.url(), {}}, [](int) {}};
  protocol::MessageIds ids;
  protocol::Dispatcher dispatcher{io, [](const std::string&) { return true; }, ids};
  replica::SyncDown sync{database, dispatcher};
  replica::ReplicaReader reader{database};
  replica::OutboundQueue queue{io, database, dispatcher};  // never welcomed: events stay queued
  std::unique_ptr<CameraAlarms> alarms;
  std::vector<json> changes;
  int applied = 0;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    database.start();
    ASSERT_TRUE(run_until(
        io, [&] { return database.ready(); }, 30s));
    sync.on_applied([this](const std::string&) { ++applied; });
    queue.start();
    const json bans = json::array({{{"id", "b_1"},
                                    {"communityId", "com_1"},
                                    {"fullName", "José Núñez"},
                                    {"plate", "ABC-123"},
                                    {"reason", "Robo de paquetes"},
                                    {"createdAt", "2026-10-01T12:00:00Z"}},
                                   {{"id", "b_2"},
                                    {"communityId", "com_1"},
                                    {"fullName", "Luis Soto"},
                                    {"reason", "Agresión"},
                                    {"createdAt", "2026-10-02T12:00:00Z"}},
                                   {{"id", "b_3"},
                                    {"communityId", "com_1"},
                                    {"fullName", "Eva Short"},
                                    {"plate", "AB12"},
                                    {"reason", "Short plate"},
                                    {"createdAt", "2026-10-03T12:00:00Z"}}});
    dispatcher.dispatch(secbox::testing::snapshot_message("c-1", "banned_visitor", 5, bans));
    ASSERT_TRUE(run_until(
        io, [&] { return applied == 1; }, 20s));
    make_alarms();
  }

  void make_alarms() {
    AlarmSettings s;
    s.min_score = 0.8;
    s.frigate_url = frigate.url();
    alarms = std::make_unique<CameraAlarms>(workers, reader, queue, s);
    alarms->subscribe([this](const json& a) { changes.push_back(a); });
  }

  void TearDown() override {
    alarms.reset();
    bool queue_stopped = false;
    queue.stop([&] { queue_stopped = true; });
    run_until(
        io, [&] { return queue_stopped; }, 10s);
    bool stopped = false;
    database.stop([&] { stopped = true; });
    run_until(
        io, [&] { return stopped; }, 10s);
  }

  std::vector<std::pair<std::string, json>> queued() {
    pqxx::connection c(db.url());
    pqxx::work w(c);
    std::vector<std::pair<std::string, json>> out;
    for (const auto& row : w.exec("SELECT type, data::text FROM outbound_event ORDER BY seq")) {
      out.emplace_back(row[0].as<std::string>(), json::parse(row[1].as<std::string>()));
    }
    return out;
  }

  static Sighting car(const std::string& id, const std::string& plate, double score) {
    return Sighting{id, "front", "car", plate, score, "", 0, std::nullopt};
  }

  // Lets the matching, the queue's commit and the snapshot's fetch finish.
  void settle() {
    run_until(
        io, [] { return false; }, 600ms);
  }
};

TEST_F(CameraAlarmsTest, APlateReadWrongThenRefinedAlarmsOnceWithTheSnapshot) {
  alarms->seen(car("1733300000.1-abc", "QRS-999", 0.91));
  settle();
  EXPECT_TRUE(alarms->list().empty());
  alarms->seen(car("1733300000.1-abc", "ABC 123", 0.93));
  ASSERT_TRUE(run_until(
      io, [&] { return changes.size() >= 2; }, 10s));  // raised, then its snapshot
  const json a = alarms->list().at(0);
  EXPECT_EQ(a["ban"]["id"], "b_1");
  EXPECT_EQ(a["ban"]["fullName"], "José Núñez");
  EXPECT_EQ(a["ban"]["reason"], "Robo de paquetes");
  EXPECT_EQ(a["read"], "ABC 123");
  EXPECT_EQ(a["match"], "exact");
  EXPECT_EQ(a["source"], "plate");
  EXPECT_EQ(a["camera"], "front");
  EXPECT_TRUE(a["hasSnapshot"].get<bool>());
  EXPECT_TRUE(a["answer"].is_null());
  auto jpeg = alarms->snapshot(a["id"]);
  ASSERT_TRUE(jpeg);
  EXPECT_EQ(jpeg->compare(0, 2, "\xFF\xD8"), 0);
  EXPECT_EQ(a["id"], name_uuid("camera-ban-hit:1733300000.1-abc:b_1"));

  auto events = queued();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].first, "ban_hit");
  EXPECT_EQ(events[0].second, (json{{"bannedVisitorId", "b_1"},
                                    {"camera", "front"},
                                    {"source", "camera"},
                                    {"frigateEventId", "1733300000.1-abc"},
                                    {"read", "ABC 123"},
                                    {"score", 0.93},
                                    {"plate", "ABC-123"}}));
}

TEST_F(CameraAlarmsTest, MisreadsAndConfusionsMatchOtherPlatesAndLowScoresDoNot) {
  alarms->seen(car("e-misread", "ABC-128", 0.9));
  alarms->seen(car("e-confusion", "A8C-I23", 0.9));
  alarms->seen(car("e-other", "JKL-456", 0.99));
  alarms->seen(car("e-low", "ABC-123", 0.5));
  alarms->seen(car("e-short", "AB13", 0.99));  // a misread of a four-character plate: no
  alarms->seen(car("e-none", "", 0));
  settle();
  const json list = alarms->list();
  ASSERT_EQ(list.size(), 2u);
  std::map<std::string, std::string> by_event;
  for (const auto& a : list) by_event[a["frigateEventId"]] = a["match"];
  EXPECT_EQ(by_event, (std::map<std::string, std::string>{{"e-misread", "misread"},
                                                          {"e-confusion", "confusion"}}));
  EXPECT_EQ(queued().size(), 2u);
}

TEST_F(CameraAlarmsTest, AnEventUpdatedTenTimesIsOneAlarmAlsoAfterARestart) {
  for (int i = 0; i < 10; ++i) alarms->seen(car("e-long", "ABC123", 0.85 + i * 0.01));
  settle();
  EXPECT_EQ(alarms->list().size(), 1u);
  EXPECT_EQ(alarms->raised(), 1u);
  // The box restarts while Frigate still reports the car.
  changes.clear();
  make_alarms();
  for (int i = 0; i < 3; ++i) alarms->seen(car("e-long", "ABC123", 0.95));
  settle();
  EXPECT_TRUE(alarms->list().empty());
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(queued().size(), 1u);
}

TEST_F(CameraAlarmsTest, AFaceNamedWithABansIdAlarms) {
  alarms->seen(Sighting{"e-face", "front", "person", "", 0, "b_2", 0.97, std::nullopt});
  alarms->seen(Sighting{"e-face-weak", "front", "person", "", 0, "b_2", 0.4, std::nullopt});
  alarms->seen(Sighting{"e-stranger", "front", "person", "", 0, "Unknown", 0.99, std::nullopt});
  settle();
  const json list = alarms->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["source"], "face");
  EXPECT_EQ(list[0]["ban"]["fullName"], "Luis Soto");
  EXPECT_EQ(list[0]["read"], "b_2");
  auto events = queued();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].second.contains("plate"));
}

TEST_F(CameraAlarmsTest, AGuardsAnswerQueuesOneVisitorEntry) {
  alarms->seen(car("e-gate", "ABC-123", 0.95));
  ASSERT_TRUE(run_until(
      io, [&] { return !alarms->list().empty(); }, 10s));
  const std::string id = alarms->list()[0]["id"];
  std::vector<Result<json>> answers;
  auto collect = [&](Result<json> r) { answers.push_back(std::move(r)); };
  alarms->answer(id, Answer{"g_1", "allowed", "", random_uuid(), ""}, collect);  // no reason
  alarms->answer(id, Answer{"g_1", "maybe", "", random_uuid(), ""}, collect);
  alarms->answer(random_uuid(), Answer{"g_1", "denied", "", random_uuid(), ""}, collect);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0].error().code, Errc::invalid);
  EXPECT_EQ(answers[1].error().code, Errc::invalid);
  EXPECT_EQ(answers[2].error().code, Errc::not_found);
  const std::string entry = random_uuid();
  alarms->answer(id, Answer{"g_1", "denied", "", entry, "2026-12-04T10:05:00Z"}, collect);
  ASSERT_TRUE(run_until(
      io, [&] { return answers.size() == 4; }, 10s));
  ASSERT_TRUE(answers[3]);
  EXPECT_EQ(answers[3].value()["answer"]["decision"], "denied");
  EXPECT_EQ(answers[3].value()["answer"]["guardId"], "g_1");
  // Answered again (another phone, a retry): as it is, nothing new queued.
  alarms->answer(id, Answer{"g_2", "allowed", "por error", random_uuid(), ""}, collect);
  ASSERT_TRUE(run_until(
      io, [&] { return answers.size() == 5; }, 10s));
  EXPECT_EQ(answers[4].value()["answer"]["guardId"], "g_1");
  settle();
  auto events = queued();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].first, "visitor_entry");
  EXPECT_EQ(events[1].second, (json{{"name", "José Núñez"},
                                    {"plate", "ABC-123"},
                                    {"guardId", "g_1"},
                                    {"decision", "denied"}}));
  pqxx::connection c(db.url());
  pqxx::work w(c);
  EXPECT_EQ(w.exec1("SELECT occurred_at = '2026-12-04T10:05:00Z'::timestamptz FROM outbound_event "
                    "WHERE type = "
                    "'visitor_entry'")[0]
                .as<bool>(),
            true)
      << "when the guard answered, not when the box heard it";
}

// After a gap (the box or Frigate down), events that ended long ago are read
// at once: the cloud hears of the banned car, no guard is alarmed for a car
// that left minutes ago; one that ended just now still alarms.
TEST_F(CameraAlarmsTest, AnEventThatEndedMinutesAgoIsRecordedNotAlarmed) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  alarms->seen(Sighting{"e-old", "front", "car", "ABC-123", 0.95, "", 0, now - 3600});
  alarms->seen(Sighting{"e-just", "front", "car", "ABC-123", 0.95, "", 0, now - 20});
  settle();
  const json list = alarms->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["frigateEventId"], "e-just");
  EXPECT_EQ(queued().size(), 2u) << "both ban_hits queued";
}

TEST_F(CameraAlarmsTest, ANewBanListIsUsedOnceItChanges) {
  alarms->seen(car("e-before", "NEW-777", 0.95));
  settle();
  EXPECT_TRUE(alarms->list().empty());
  dispatcher.dispatch(secbox::testing::upsert_message("c-2", "banned_visitor", 6,
                                                      {{"id", "b_9"},
                                                       {"communityId", "com_1"},
                                                       {"fullName", "Nuevo Baneado"},
                                                       {"plate", "NEW-777"},
                                                       {"reason", "Amenazas"},
                                                       {"createdAt", "2026-12-04T09:00:00Z"}}));
  ASSERT_TRUE(run_until(
      io, [&] { return applied == 2; }, 20s));
  alarms->bans_changed();
  alarms->seen(car("e-after", "NEW777", 0.95));
  // The same read of the same event as before the change: matched again.
  alarms->seen(car("e-before", "NEW-777", 0.95));
  ASSERT_TRUE(run_until(
      io, [&] { return alarms->list().size() == 2; }, 10s));
  EXPECT_EQ(alarms->list()[0]["ban"]["id"], "b_9");
  EXPECT_EQ(alarms->list()[1]["ban"]["id"], "b_9");
}

// A ban whose reason is 300 KB: each alarm it raises keeps its texts cut
// (the reason at 4 KiB, on a character's boundary), so that 200 kept alarms
// cannot hold 60 MB; the ban list keeps them whole.
TEST_F(CameraAlarmsTest, ABansLongTextsAreCutInTheAlarmsItRaises) {
  std::string reason;
  while (reason.size() < 300 * 1024) reason += "Daños ñ ";
  dispatcher.dispatch(
      secbox::testing::upsert_message("c-2", "banned_visitor", 6,
                                      {{"id", "b_big"},
                                       {"communityId", "com_1"},
                                       {"fullName", std::string(2000, 'N')},
                                       {"plate", "OVR-001"},
                                       {"reason", reason},
                                       {"photoUrl", "https://x/" + std::string(3000, 'p')},
                                       {"createdAt", "2026-12-04T09:00:00Z"}}));
  ASSERT_TRUE(run_until(
      io, [&] { return applied == 2; }, 20s));
  alarms->bans_changed();
  for (int i = 0; i < 5; ++i) alarms->seen(car("e-big-" + std::to_string(i), "OVR-001", 0.95));
  ASSERT_TRUE(run_until(
      io, [&] { return alarms->list().size() == 5; }, 10s));
  for (const auto& a : alarms->list()) {
    const auto kept = a["ban"]["reason"].get<std::string>();
    EXPECT_LE(kept.size(), 4096u + 3);
    EXPECT_EQ(kept.rfind("\u2026"), kept.size() - 3) << "the cut is marked";
    EXPECT_EQ(json(kept).dump().find("\\u"), std::string::npos) << "no character broken";
    EXPECT_LE(a["ban"]["fullName"].get<std::string>().size(), 512u + 3);
    EXPECT_TRUE(a["ban"]["photoUrl"].is_null());
    EXPECT_LT(a.dump().size(), 6000u);
  }
}

}  // namespace
}  // namespace secbox::alarms
