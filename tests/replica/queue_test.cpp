// The durable outbound queue against a real PostgreSQL and the cloud
// simulator over real WSS: enqueue answers only once the event is committed,
// a clientId is queued once, a full queue refuses clearly (alarms excepted),
// and 10,000 events drained through at least 20 random connection cuts reach
// the cloud, every one.
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <random>
#include <sys/stat.h>

#include <algorithm>

#include "cloudsim/cloudsim.hpp"
#include "common/ids.hpp"
#include "common/time.hpp"
#include "replica/queue.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"
#include "tunnel/cloud_session.hpp"

namespace secbox::replica {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

OutboundEvent note(std::string client_id = random_uuid()) {
  return OutboundEvent{std::move(client_id),
                       "guard_note",
                       "2026-11-22T09:58:00Z",
                       {{"guardId", "g_1"}, {"text", "Portón revisado"}}};
}

class QueueTest : public ::testing::Test {
 protected:
  TestDatabase db;
  TempDir dir;
  boost::asio::io_context io;
  BlockingPool pool{io, 1};
  Database database{io, DatabaseSettings{db.url(), {}}, [](int) {}};
  protocol::MessageIds ids;
  std::unique_ptr<protocol::Dispatcher> router;  // no transport until a test gives it one
  std::unique_ptr<OutboundQueue> queue;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    database.start();
    ASSERT_TRUE(run_until(
        io, [&] { return database.ready(); }, 30s));
  }
  void TearDown() override {
    if (queue) queue->stop([] {});
    bool stopped = false;
    database.stop([&] { stopped = true; });
    run_until(
        io, [&] { return stopped; }, 10s);
  }
  void make(QueueLimits limits = {}) {
    queue.reset();
    router = std::make_unique<protocol::Dispatcher>(io, ids);
    queue = std::make_unique<OutboundQueue>(io, database, *router, limits);
    queue->start();
    run_until(
        io, [] { return false; }, 100ms);
  }
  Result<Enqueued> enqueue(OutboundEvent e) {
    std::optional<Result<Enqueued>> out;
    queue->enqueue(std::move(e), [&](Result<Enqueued> r) { out = std::move(r); });
    EXPECT_TRUE(run_until(
        io, [&] { return out.has_value(); }, 10s));
    return out ? std::move(*out) : Result<Enqueued>(Error{Errc::internal, "no answer"});
  }
  std::int64_t scalar(const std::string& sql) {
    pqxx::connection c(db.url());
    pqxx::read_transaction tx(c);
    return tx.exec1(sql)[0].as<std::int64_t>();
  }
};

// The queue destroyed (a re-pairing, a stop) while its commit and its start
// are still on their way back: the completions touch nothing of it (ASan
// would say), every caller hears it stopped, and what committed is kept.
TEST_F(QueueTest, DestroyedWhileItsDatabaseWorkIsInFlightItsCallersHearSo) {
  make();
  std::vector<Result<Enqueued>> answers;
  for (int i = 0; i < 3; ++i) {
    queue->enqueue(OutboundEvent{random_uuid(),
                                 "guard_note",
                                 "2026-12-04T10:00:00Z",
                                 {{"guardId", "g_1"}, {"text", "ronda " + std::to_string(i)}}},
                   [&](Result<Enqueued> r) { answers.push_back(std::move(r)); });
  }
  queue.reset();
  protocol::Dispatcher other_router{io, ids};
  auto other = std::make_unique<OutboundQueue>(io, database, other_router);
  other->start();  // and a queue whose start is still in flight
  other.reset();
  ASSERT_TRUE(run_until(
      io, [&] { return answers.size() == 3; }, 10s));
  run_until(
      io, [] { return false; }, 300ms);
  for (const auto& a : answers) {
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, Errc::unavailable);
  }
  // The first was in a commit already (it is kept); the two waiting for the
  // next one were never written.
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event"), 1);
}

TEST_F(QueueTest, EnqueueAnswersOnceCommittedAndAClientIdIsQueuedOnce) {
  make();
  const auto id = random_uuid();
  auto first = enqueue(note(id));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_FALSE(first.value().duplicate);
  // Committed: another connection sees it at once.
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event WHERE client_id = '" + id + "'"), 1);
  auto again = enqueue(note(id));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again.value().duplicate);
  EXPECT_EQ(again.value().seq, first.value().seq);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event"), 1);
  EXPECT_EQ(queue->stats().depth, 1);
  EXPECT_TRUE(queue->stats().oldest_at);
}

TEST_F(QueueTest, MalformedEventsAreRefusedNamingTheField) {
  make();
  auto e = note("not-a-uuid");
  EXPECT_EQ(enqueue(e).error().message, "clientId must be a UUID");
  e = note();
  e.type = "party";
  EXPECT_EQ(enqueue(e).error().code, Errc::invalid);
  e = note();
  e.data.erase("text");
  EXPECT_EQ(enqueue(e).error().message, "data.text is required");
  e = note();
  e.occurred_at = "yesterday";
  EXPECT_EQ(enqueue(e).error().message, "occurredAt must be an RFC 3339 time");
  e = note();
  e.data["text"] = std::string("a\0b", 3);  // PostgreSQL's jsonb cannot hold U+0000
  EXPECT_EQ(enqueue(e).error().message, "data must not contain U+0000");
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event"), 0);
}

TEST_F(QueueTest, AFullQueueRefusesNewEventsClearlyButTakesAlarmsUpToTheirReserve) {
  QueueLimits limits;
  limits.max_rows = 3;
  limits.alarm_reserve_rows = 2;
  make(limits);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(enqueue(note()));
  auto refused = enqueue(note());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::queue_full);
  auto alarm = enqueue(OutboundEvent{random_uuid(),
                                     "ban_hit",
                                     "2026-11-22T09:58:30Z",
                                     {{"bannedVisitorId", "bv_3"}, {"plate", "XYZ987"}}});
  EXPECT_TRUE(alarm) << alarm.error().message;
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event"), 4);
  ASSERT_TRUE(enqueue(OutboundEvent{
      random_uuid(), "ban_hit", "2026-11-22T09:58:31Z", {{"bannedVisitorId", "bv_3"}}}));
  // Beyond the reserve, alarms too are refused: nothing grows without bound.
  auto over = enqueue(OutboundEvent{
      random_uuid(), "ban_hit", "2026-11-22T09:58:32Z", {{"bannedVisitorId", "bv_3"}}});
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::queue_full);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event"), 5);
}

TEST_F(QueueTest, AcknowledgedEventsArePurgedAfterTheirKeepTime) {
  QueueLimits limits;
  limits.keep_acked = std::chrono::hours(0);
  limits.purge_every = 100ms;
  make(limits);
  ASSERT_TRUE(enqueue(note()));
  ASSERT_TRUE(enqueue(note()));
  {
    pqxx::connection c(db.url());
    pqxx::work tx(c);
    tx.exec0(
        "UPDATE outbound_event SET acked_at = now() - interval '1 second' WHERE seq = (SELECT "
        "min(seq) FROM outbound_event)");
    tx.commit();
  }
  EXPECT_TRUE(run_until(
      io, [&] { return scalar("SELECT count(*) FROM outbound_event") == 1; }, 10s));
}

TEST_F(QueueTest, CallersAtOnceShareCommitsAndEachIsAnsweredForItsOwnEvent) {
  make();
  constexpr int kCallers = 64;
  const auto twice = random_uuid();
  std::vector<OutboundEvent> events;
  for (int i = 0; i < kCallers; ++i) events.push_back(note());
  events[10].client_id = twice;
  events[11].client_id = twice;
  // A row the server refuses (here a trigger refuses it) fails alone, not
  // the events committed beside it.
  {
    pqxx::connection c(db.url());
    pqxx::work tx(c);
    tx.exec0(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.data->>'text' = 'refuse me' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; "
        "END $$");
    tx.exec0(
        "CREATE TRIGGER refuse BEFORE INSERT ON outbound_event FOR EACH ROW EXECUTE FUNCTION "
        "refuse()");
    tx.commit();
  }
  events[20].data["text"] = "refuse me";
  std::vector<std::optional<Result<Enqueued>>> answers(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    queue->enqueue(events[i], [&, i](Result<Enqueued> r) {
      EXPECT_FALSE(answers[i]) << "answered twice";
      answers[i] = std::move(r);
    });
  }
  ASSERT_TRUE(run_until(
      io,
      [&] {
        return std::all_of(answers.begin(), answers.end(), [](auto& a) { return a.has_value(); });
      },
      30s));
  int ok = 0, duplicates = 0;
  for (int i = 0; i < kCallers; ++i) {
    if (i == 20) {
      ASSERT_FALSE(*answers[i]);
      EXPECT_EQ(answers[i]->error().code, Errc::database);
      continue;
    }
    ASSERT_TRUE(*answers[i]) << i << ": " << answers[i]->error().message;
    ok += !answers[i]->value().duplicate;
    duplicates += answers[i]->value().duplicate;
  }
  EXPECT_EQ(ok, kCallers - 2);
  EXPECT_EQ(duplicates, 1);
  EXPECT_EQ(answers[10]->value().seq, answers[11]->value().seq);
  EXPECT_LT(queue->commits(), kCallers) << "grouped";
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event"), kCallers - 2);
  EXPECT_EQ(queue->stats().depth, kCallers - 2);
  EXPECT_EQ(queue->stats().bytes, scalar("SELECT sum(size_bytes) FROM outbound_event"));
  // The queue's order is the callers' order.
  EXPECT_LT(answers[0]->value().seq, answers[kCallers - 1]->value().seq);
}

TEST_F(QueueTest, TheLimitHoldsForCallersAtOnce) {
  QueueLimits limits;
  limits.max_rows = 10;
  make(limits);
  int ok = 0, full = 0, answered = 0;
  for (int i = 0; i < 32; ++i) {
    queue->enqueue(note(), [&](Result<Enqueued> r) {
      ++answered;
      ok += bool(r);
      full += !r && r.error().code == Errc::queue_full;
    });
  }
  ASSERT_TRUE(run_until(
      io, [&] { return answered == 32; }, 30s));
  EXPECT_EQ(ok, 10);
  EXPECT_EQ(full, 22);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event"), 10);
}

// Acknowledgements in any order, repeated, partial, naming unknown events:
// the figures kept on the loop equal a recount.
TEST_F(QueueTest, IncrementalFiguresEqualARecountWhateverTheAcks) {
  make();
  constexpr int kEvents = 1200;
  std::vector<std::string> ids;
  for (int i = 0; i < kEvents; ++i) {
    ids.push_back(random_uuid());
    OutboundEvent e = note(ids.back());
    e.data["text"] = std::string(static_cast<std::size_t>(i % 50), 'x') + "ronda";
    ASSERT_TRUE(enqueue(e));
  }
  ::mkdir(dir.file("sim").c_str(), 0700);
  cloudsim::CloudSim sim(
      cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  sim.set_auto_ack_events(false);
  tunnel::SessionSettings s;
  s.tunnel.gateway_url = sim.gateway_url();
  s.tunnel.device_id = "dev_1";
  s.tunnel.version = "test";
  s.tunnel.ca_file = sim.ca_file();
  s.rotator =
      tunnel::RotatorSettings{sim.base_url(), sim.ca_file(), dir.file("device.jwt"), 3600s, 7200s};
  s.boot_id = random_uuid();
  auto clock = system_clock_on(io);
  tunnel::CloudSession session(io, pool, *router, *clock, s, sim.issue_token("dev_1"));
  session.start();
  ASSERT_TRUE(run_until(
      io, [&] { return sim.distinct_events() == kEvents; }, 30s));
  auto ack = [&](std::vector<std::string> names) {
    sim.send_text(json{{"v", 1},
                       {"type", "events.ack"},
                       {"id", "m_" + random_uuid()},
                       {"ts", "2026-12-03T10:00:00Z"},
                       {"payload", {{"clientIds", names}}}}
                      .dump());
  };
  auto recount_matches = [&] {
    pqxx::connection c(db.url());
    pqxx::read_transaction tx(c);
    auto r = tx.exec1(
        "SELECT count(*), COALESCE(sum(size_bytes), 0), (SELECT to_char(enqueued_at AT TIME ZONE "
        "'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM outbound_event WHERE acked_at IS NULL ORDER BY "
        "seq LIMIT 1) "
        "FROM outbound_event WHERE acked_at IS NULL");
    const auto& st = queue->stats();
    const std::optional<std::string> oldest =
        r[2].is_null() ? std::nullopt : std::optional<std::string>(r[2].as<std::string>());
    return st.depth == r[0].as<std::int64_t>() && st.bytes == r[1].as<std::int64_t>() &&
           st.oldest_at == oldest;
  };
  std::vector<std::string> middle(ids.begin() + 600, ids.begin() + 700);
  std::reverse(middle.begin(), middle.end());
  ack(middle);
  ack(std::vector<std::string>(ids.begin() + 650, ids.begin() + 660));  // again
  ack({random_uuid(), "not-a-uuid"});                                   // unknown
  ASSERT_TRUE(run_until(
      io, [&] { return queue->stats().depth == kEvents - 100; }, 10s));
  EXPECT_TRUE(recount_matches());
  ack(std::vector<std::string>(ids.begin(), ids.begin() + 10));  // the oldest: the oldest moves
  ASSERT_TRUE(run_until(
      io, [&] { return queue->stats().depth == kEvents - 110; }, 10s));
  EXPECT_TRUE(recount_matches());
  ack({ids[10], ids[700], random_uuid()});  // known and unknown together
  ASSERT_TRUE(run_until(
      io, [&] { return queue->stats().depth == kEvents - 112; }, 10s));
  EXPECT_TRUE(recount_matches());
  ack(ids);
  ASSERT_TRUE(run_until(
      io, [&] { return queue->stats().depth == 0; }, 10s));
  EXPECT_TRUE(recount_matches());
  EXPECT_FALSE(queue->stats().oldest_at);
  EXPECT_EQ(queue->stats().bytes, 0);
  bool stopped = false;
  session.stop([&] { stopped = true; });
  run_until(
      io, [&] { return stopped; }, 10s);
}

TEST_F(QueueTest, TenThousandEventsOfflineReachTheCloudThroughTwentyRandomCuts) {
  QueueLimits limits;
  limits.batch_events = 100;  // many batches, so that cuts land mid-drain
  make(limits);
  constexpr int kEvents = 10000;
  // Offline: no tunnel yet. Enqueued concurrently, as guards and cameras would.
  int done = 0, failed = 0;
  for (int i = 0; i < kEvents; ++i) {
    queue->enqueue(note(), [&](Result<Enqueued> r) {
      ++done;
      failed += !r;
    });
  }
  ASSERT_TRUE(run_until(
      io, [&] { return done == kEvents; }, 300s));
  ASSERT_EQ(failed, 0);
  ASSERT_EQ(queue->stats().depth, kEvents);

  ::mkdir(dir.file("sim").c_str(), 0700);
  cloudsim::CloudSim sim(
      cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  tunnel::SessionSettings s;
  s.tunnel.gateway_url = sim.gateway_url();
  s.tunnel.device_id = "dev_1";
  s.tunnel.version = "test";
  s.tunnel.ca_file = sim.ca_file();
  s.tunnel.backoff_initial = 10ms;
  s.tunnel.backoff_max = 50ms;
  s.rotator =
      tunnel::RotatorSettings{sim.base_url(), sim.ca_file(), dir.file("device.jwt"), 30ms, 200ms};
  s.boot_id = random_uuid();
  auto clock = system_clock_on(io);
  tunnel::CloudSession session(io, pool, *router, *clock, s, sim.issue_token("dev_1"));
  session.set_hello_source([&] {
    auto h = tunnel::empty_hello_state();
    h.queue_depth = queue->stats().depth;
    h.oldest_at = queue->stats().oldest_at;
    return h;
  });
  session.start();

  std::mt19937 rng(20261122);
  int cuts = 0;
  std::size_t at_last_cut = 0;
  const auto deadline = std::chrono::steady_clock::now() + 240s;
  while (queue->stats().depth > 0 && std::chrono::steady_clock::now() < deadline) {
    run_until(
        io, [] { return false; },
        std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 60)(rng)));
    // Cut while events are still flowing, at least 20 times.
    if (cuts < 40 && sim.distinct_events() > at_last_cut && sim.distinct_events() < kEvents) {
      sim.close_device(std::uniform_int_distribution<int>(0, 1)(rng) ? 1011 : 1001, "cut");
      at_last_cut = sim.distinct_events();
      ++cuts;
    }
  }
  std::printf(
      "cuts: %d; events received %ld for %zu distinct (%ld resent duplicates); %lld batches sent\n",
      cuts, sim.events_received(), sim.distinct_events(),
      sim.events_received() - static_cast<long>(sim.distinct_events()),
      static_cast<long long>(queue->batches_sent()));
  EXPECT_GE(cuts, 20);
  EXPECT_EQ(sim.distinct_events(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(queue->stats().depth, 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbound_event WHERE acked_at IS NULL"), 0);

  // Every clientId the cloud holds is one the box queued, none missing.
  pqxx::connection c(db.url());
  pqxx::read_transaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM outbound_event")[0].as<int>(), kEvents);

  bool stopped = false;
  session.stop([&] { stopped = true; });
  run_until(
      io, [&] { return stopped; }, 10s);
}

}  // namespace
}  // namespace secbox::replica
