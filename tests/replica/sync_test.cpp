// Sync down against a real PostgreSQL: snapshots in chunks (staged, swapped
// whole, refused whole), deltas with versions and tombstones, and the reads
// the LAN serves. Messages go through the real dispatcher; the replies it
// would send to the cloud are captured.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "replica/reads.hpp"
#include "protocol/dispatcher.hpp"
#include "replica/sync.hpp"
#include "run_loop.hpp"
#include "test_database.hpp"

namespace secbox::replica {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TestDatabase;

json ban(const std::string& id, const std::string& name,
         std::optional<std::int64_t> version = std::nullopt) {
  json r{{"id", id},
         {"communityId", "com_1"},
         {"fullName", name},
         {"plate", nullptr},
         {"photoUrl", nullptr},
         {"reason", "Robo"},
         {"createdAt", "2026-10-01T12:00:00Z"},
         {"expiresAt", nullptr}};
  if (version) r["version"] = *version;
  return r;
}

class SyncTest : public ::testing::Test {
 protected:
  TestDatabase db;
  boost::asio::io_context io;
  Database database{io, DatabaseSettings{db.url(), {}}, [](int) {}};
  protocol::MessageIds ids;
  std::vector<json> replies;
  protocol::Dispatcher dispatcher{io,
                                  [this](const std::string& text) {
                                    replies.push_back(json::parse(text));
                                    return true;
                                  },
                                  ids};
  SyncDown sync{database, dispatcher};
  ReplicaReader reader{database};
  int applied = 0;
  int sent = 0;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    database.start();
    ASSERT_TRUE(run_until(
        io, [&] { return database.ready(); }, 30s));
    sync.on_applied([this](const std::string&) { ++applied; });
  }
  void TearDown() override {
    bool stopped = false;
    database.stop([&] { stopped = true; });
    run_until(
        io, [&] { return stopped; }, 10s);
  }

  // Sends one message from the "cloud"; returns its id.
  std::string send(const std::string& type, const json& payload) {
    const std::string id = "c-" + std::to_string(++sent);
    dispatcher.dispatch(json{
        {"v", 1}, {"type", type}, {"id", id}, {"ts", "2026-11-22T10:00:00Z"}, {"payload", payload}}
                            .dump());
    return id;
  }
  json chunk(const std::string& snapshot, std::int64_t version, int i, int n, json rows) {
    return {{"snapshotId", snapshot},
            {"version", version},
            {"chunk", i},
            {"chunks", n},
            {"rows", std::move(rows)}};
  }
  // Waits until `n` replies were sent and every database task has finished.
  void settle(std::size_t n) {
    EXPECT_TRUE(run_until(
        io, [&] { return replies.size() >= n; }, 20s))
        << replies.size() << " replies";
    bool drained = false;  // the database thread runs tasks in order
    database.run<int>([](Session&) -> Result<int> { return 0; },
                      [&](Result<int>) { drained = true; });
    run_until(
        io, [&] { return drained; }, 20s);
  }
  std::vector<std::string> names(const std::string& table = "banned_visitor") {
    pqxx::connection c(db.url());
    pqxx::read_transaction tx(c);
    std::vector<std::string> out;
    for (const auto& r :
         tx.exec("SELECT full_name FROM " + table + " WHERE NOT deleted ORDER BY full_name")) {
      out.push_back(r[0].as<std::string>());
    }
    return out;
  }
  std::int64_t scalar(const std::string& sql) {
    pqxx::connection c(db.url());
    pqxx::read_transaction tx(c);
    return tx.exec1(sql)[0].as<std::int64_t>();
  }
  void load_old_set() {
    send("snapshot.banned_visitor",
         chunk("s0", 5, 1, 1, {ban("o1", "Old One"), ban("o2", "Old Two")}));
    settle(1);
    ASSERT_EQ(replies.back()["type"], "ack");
    replies.clear();
  }
};

// Re-pairing replaces the cloud session and its SyncDown while the database
// may still be working for the old one: its answers must touch nothing of
// it (ASan sees it if they do).
TEST_F(SyncTest, ASyncDownDestroyedWhileTheDatabaseWorksIsNotTouchedAfterwards) {
  // A session's own dispatcher and SyncDown, as each cloud session has them.
  protocol::Dispatcher session{io, [](const std::string&) { return true; }, ids};
  auto replaced = std::make_unique<SyncDown>(database, session);
  int applied_old = 0;
  replaced->on_applied([&](const std::string&) { ++applied_old; });
  auto to_session = [&](const std::string& type, const json& payload) {
    session.dispatch(json{
        {"v", 1},
        {"type", type},
        {"id", "c-" + std::to_string(++sent)},
        {"ts", "2026-11-22T10:00:00Z"},
        {"payload",
         payload}}.dump());
  };
  to_session("snapshot.banned_visitor", chunk("s9", 9, 1, 1, {ban("a", "Ana")}));
  to_session("delta.banned_visitor",
             {{"changes", json::array({{{"op", "delete"}, {"id", "a"}, {"version", 10}}})}});
  replaced.reset();
  settle(0);
  EXPECT_EQ(applied_old, 0);
}

TEST_F(SyncTest, ThreeChunkSnapshotIsSwappedInWholeAndAckedOnlyAtTheLast) {
  load_old_set();
  send("snapshot.banned_visitor", chunk("s1", 187, 1, 3, {ban("a", "Ana"), ban("b", "Beto")}));
  send("snapshot.banned_visitor",
       chunk("s1", 187, 2, 3, {ban("c", "Caro"), ban("d", "Dani", 190)}));
  settle(0);
  EXPECT_TRUE(replies.empty());  // chunks 1..n-1 get no reply
  EXPECT_EQ(names(),
            (std::vector<std::string>{"Old One", "Old Two"}));  // readers still see the old set
  const auto last = send("snapshot.banned_visitor", chunk("s1", 187, 3, 3, {ban("e", "Eva")}));
  settle(1);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["type"], "ack");
  EXPECT_EQ(replies[0]["re"], last);
  EXPECT_EQ(replies[0]["payload"], (json{{"snapshotId", "s1"}, {"version", 187}}));
  EXPECT_EQ(names(), (std::vector<std::string>{"Ana", "Beto", "Caro", "Dani", "Eva"}));
  EXPECT_EQ(scalar("SELECT version FROM banned_visitor WHERE id = 'd'"),
            190);  // a row's own version
  EXPECT_EQ(scalar("SELECT version FROM banned_visitor WHERE id = 'a'"), 187);
  EXPECT_EQ(scalar("SELECT version FROM sync_cursor WHERE entity = 'banned_visitor'"), 187);
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_class WHERE relname = 'banned_visitor_next'"), 0);

  bool read = false;
  reader.refresh([&] { read = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return read; }, 10s));
  EXPECT_EQ(reader.cursors()["banned_visitor"], 187);
  EXPECT_TRUE(reader.freshness().at("banned_visitor").last_snapshot_at);
  std::optional<Result<BanList>> bans;
  reader.ban_list([&](Result<BanList> r) { bans = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return bans.has_value(); }, 10s));
  ASSERT_TRUE(*bans);
  EXPECT_EQ(bans->value().version, 187);
  EXPECT_EQ(bans->value().bans.size(), 5u);
}

TEST_F(SyncTest, AnotherSnapshotIdDiscardsThePartialOne) {
  load_old_set();
  send("snapshot.banned_visitor", chunk("sA", 10, 1, 3, {ban("a", "From A")}));
  send("snapshot.banned_visitor", chunk("sB", 11, 1, 2, {ban("b", "From B 1")}));
  send("snapshot.banned_visitor", chunk("sB", 11, 2, 2, {ban("c", "From B 2")}));
  settle(1);
  EXPECT_EQ(replies[0]["payload"]["snapshotId"], "sB");
  EXPECT_EQ(names(), (std::vector<std::string>{"From B 1", "From B 2"}));
  // The rest of A now has nothing to follow.
  send("snapshot.banned_visitor", chunk("sA", 10, 2, 3, {ban("x", "Late A")}));
  settle(2);
  EXPECT_EQ(replies[1]["type"], "error");
  EXPECT_EQ(replies[1]["payload"]["code"], "invalid_args");
  EXPECT_EQ(names(), (std::vector<std::string>{"From B 1", "From B 2"}));
}

TEST_F(SyncTest, AGapIsRefusedAndTheOldSetStays) {
  load_old_set();
  send("snapshot.banned_visitor", chunk("s1", 20, 1, 3, {ban("a", "Ana")}));
  send("snapshot.banned_visitor", chunk("s1", 20, 3, 3, {ban("c", "Caro")}));
  settle(1);
  EXPECT_EQ(replies[0]["type"], "error");
  EXPECT_EQ(replies[0]["payload"]["code"], "invalid_args");
  EXPECT_NE(replies[0]["payload"]["message"].get<std::string>().find("expected chunk 2, got 3"),
            std::string::npos);
  EXPECT_EQ(names(), (std::vector<std::string>{"Old One", "Old Two"}));
  EXPECT_EQ(scalar("SELECT version FROM sync_cursor WHERE entity = 'banned_visitor'"), 5);
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_class WHERE relname = 'banned_visitor_next'"), 0);
}

TEST_F(SyncTest, AnInvalidRowAnywhereRefusesTheWholeSnapshotAtItsLastChunk) {
  load_old_set();
  auto bad = ban("b", "Beto");
  bad.erase("fullName");
  send("snapshot.banned_visitor", chunk("s1", 30, 1, 3, {ban("a", "Ana")}));
  send("snapshot.banned_visitor", chunk("s1", 30, 2, 3, {ban("x", "Xavi"), bad}));
  settle(0);
  EXPECT_TRUE(replies.empty());
  send("snapshot.banned_visitor", chunk("s1", 30, 3, 3, {ban("c", "Caro")}));
  settle(1);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["payload"]["code"], "invalid_args");
  EXPECT_EQ(replies[0]["payload"]["message"], "chunk 2 row 1: fullName is required");
  EXPECT_EQ(names(), (std::vector<std::string>{"Old One", "Old Two"}));
}

TEST_F(SyncTest, AnEmptySnapshotEmptiesTheSetAndDuplicateIdsAreRefused) {
  load_old_set();
  send("snapshot.banned_visitor", chunk("s1", 40, 1, 1, {ban("a", "Ana"), ban("a", "Ana again")}));
  settle(1);
  EXPECT_EQ(replies[0]["payload"]["code"], "invalid_args");
  EXPECT_EQ(names(), (std::vector<std::string>{"Old One", "Old Two"}));
  send("snapshot.banned_visitor", chunk("s2", 41, 1, 1, json::array()));
  settle(2);
  EXPECT_EQ(replies[1]["type"], "ack");
  EXPECT_TRUE(names().empty());
}

// A snapshot is built in a table of its own and renamed into place: the
// table it leaves keeps the entity's constraints and indexes (a delta's
// upsert needs the primary key), and COPY keeps every character of a value.
TEST_F(SyncTest, TheSwappedInTableKeepsItsIndexesAndChecksAndEveryCharacter) {
  load_old_set();
  auto odd = ban("odd", "Tab\there");
  odd["reason"] = "Back\\slash\\N, new\nline, CR\r and ñ";
  send("snapshot.banned_visitor", chunk("s1", 50, 1, 2, {odd}));
  send("snapshot.banned_visitor", chunk("s1", 50, 2, 2, {ban("plain", "Plain")}));
  settle(1);
  ASSERT_EQ(replies[0]["type"], "ack");
  {
    pqxx::connection c(db.url());
    pqxx::read_transaction tx(c);
    const auto row =
        tx.exec1("SELECT full_name, reason, plate IS NULL FROM banned_visitor WHERE id = 'odd'");
    EXPECT_EQ(row[0].as<std::string>(), "Tab\there");
    EXPECT_EQ(row[1].as<std::string>(), "Back\\slash\\N, new\nline, CR\r and ñ");
    EXPECT_TRUE(row[2].as<bool>());  // null stays null
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'banned_visitor'"
                   " AND indexname IN ('banned_visitor_pkey', 'banned_visitor_plate')"),
            2);  // id and plate, under the names migrations/ gave them
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'banned_visitor'"), 2);
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_constraint WHERE conrelid = 'banned_visitor'::regclass"
                   " AND contype IN ('p', 'c')"),
            2);
  send("delta.banned_visitor",
       {{"changes",
         json::array({{{"op", "upsert"}, {"version", 51}, {"row", ban("plain", "Plain Two")}}})}});
  settle(2);
  EXPECT_EQ(replies[1]["type"], "ack");
  EXPECT_EQ(names(), (std::vector<std::string>{"Plain Two", "Tab\there"}));
}

// A value the shape check lets through but the database refuses (there is
// no 30 February) refuses the whole snapshot at its last chunk; the old set
// stays and the next table is dropped with the next snapshot.
TEST_F(SyncTest, AValueTheDatabaseRefusesInAnEarlyChunkRefusesTheSnapshot) {
  load_old_set();
  auto bad = ban("b", "Beto");
  bad["createdAt"] = "2026-02-30T10:00:00Z";
  send("snapshot.banned_visitor", chunk("s1", 60, 1, 3, {ban("a", "Ana"), bad}));
  send("snapshot.banned_visitor", chunk("s1", 60, 2, 3, {ban("c", "Caro")}));
  send("snapshot.banned_visitor", chunk("s1", 60, 3, 3, {ban("d", "Dani")}));
  settle(1);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["type"], "error");
  EXPECT_EQ(replies[0]["payload"]["code"], "invalid_args");
  EXPECT_EQ(names(), (std::vector<std::string>{"Old One", "Old Two"}));
  EXPECT_EQ(scalar("SELECT version FROM sync_cursor WHERE entity = 'banned_visitor'"), 5);
  send("snapshot.banned_visitor", chunk("s2", 61, 1, 1, {ban("e", "Eva")}));
  settle(2);
  EXPECT_EQ(replies[1]["type"], "ack");
  EXPECT_EQ(names(), (std::vector<std::string>{"Eva"}));
}

TEST_F(SyncTest, DeltasRepeatedReorderedAndResurrectedEndInTheCloudsState) {
  send("snapshot.banned_visitor", chunk("s0", 10, 1, 1, {ban("a", "Ana"), ban("b", "Beto", 12)}));
  settle(1);
  auto upsert = [](json row, std::int64_t v) {
    return json{{"op", "upsert"}, {"version", v}, {"row", std::move(row)}};
  };
  auto del = [](const std::string& id, std::int64_t v) {
    return json{{"op", "delete"}, {"version", v}, {"id", id}};
  };
  const json d1{{"changes", {upsert(ban("a", "Ana 2"), 15)}}};
  send("delta.banned_visitor", d1);
  send("delta.banned_visitor", {{"changes", {del("b", 13)}}});
  send("delta.banned_visitor",
       {{"changes", {upsert(ban("b", "Beto old"), 11)}}});  // older than the tombstone
  send("delta.banned_visitor",
       {{"changes", {upsert(ban("c", "Caro old"), 9)}}});  // not above the snapshot
  send("delta.banned_visitor", {{"changes", {upsert(ban("c", "Caro"), 16), del("z", 14)}}});
  send("delta.banned_visitor", d1);                                              // a repeat
  send("delta.banned_visitor", {{"changes", {upsert(ban("a", "Ana 1"), 14)}}});  // late, older
  settle(8);
  for (std::size_t i = 1; i < replies.size(); ++i)
    EXPECT_EQ(replies[i]["type"], "ack") << replies[i];
  EXPECT_EQ(replies.back()["payload"]["cursor"], 16);
  EXPECT_EQ(names(), (std::vector<std::string>{"Ana 2", "Caro"}));
  EXPECT_EQ(scalar("SELECT version FROM banned_visitor WHERE id = 'b' AND deleted"), 13);
  EXPECT_EQ(scalar("SELECT version FROM banned_visitor WHERE id = 'z' AND deleted"), 14);
  EXPECT_EQ(scalar("SELECT version FROM sync_cursor WHERE entity = 'banned_visitor'"), 16);

  // Deleted, then upserted again with a newer version: back.
  send("delta.banned_visitor", {{"changes", {upsert(ban("b", "Beto back"), 17)}}});
  settle(9);
  EXPECT_EQ(names(), (std::vector<std::string>{"Ana 2", "Beto back", "Caro"}));

  // A snapshot replaces everything, tombstones included.
  send("snapshot.banned_visitor", chunk("s1", 20, 1, 1, {ban("a", "Ana 3")}));
  settle(10);
  EXPECT_EQ(scalar("SELECT count(*) FROM banned_visitor"), 1);
}

TEST_F(SyncTest, AnInvalidChangeFailsTheWholeDeltaNamingIt) {
  json bad = ban("b", "Beto");
  bad["createdAt"] = "yesterday";
  send("delta.banned_visitor", {{"changes",
                                 {{{"op", "upsert"}, {"version", 3}, {"row", ban("a", "Ana")}},
                                  {{"op", "upsert"}, {"version", 4}, {"row", bad}}}}});
  settle(1);
  EXPECT_EQ(replies[0]["payload"]["code"], "invalid_args");
  EXPECT_EQ(replies[0]["payload"]["message"], "changes[1].row.createdAt must be an RFC 3339 time");
  EXPECT_TRUE(names().empty());
  EXPECT_EQ(scalar("SELECT version FROM sync_cursor WHERE entity = 'banned_visitor'"), 0);
}

TEST_F(SyncTest, ScheduleFollowsTheCommunitysTimeZoneAndGuardsCarryTheirPinHash) {
  send("snapshot.community",
       chunk("c", 1, 1, 1,
             {{{"id", "com_1"}, {"name", "Las Palmas"}, {"timezone", "America/Mexico_City"}}}));
  auto guest = [](const std::string& id, const std::string& from, const std::string& until,
                  const std::string& status) {
    return json{{"id", id},
                {"communityId", "com_1"},
                {"unitId", "u_12"},
                {"guestName", id},
                {"plate", nullptr},
                {"validFrom", from},
                {"validUntil", until},
                {"maxEntries", nullptr},
                {"status", status}};
  };
  send("snapshot.guest_authorization",
       chunk("g", 1, 1, 1,
             {guest("today", "2026-11-22T00:00:00-06:00", "2026-11-22T23:59:59-06:00", "active"),
              // 01:00 UTC on the 23rd is still the evening of the 22nd in Mexico City.
              guest("evening", "2026-11-23T01:00:00Z", "2026-11-23T03:00:00Z", "active"),
              guest("tomorrow", "2026-11-23T08:00:00-06:00", "2026-11-23T20:00:00-06:00", "active"),
              guest("revoked", "2026-11-22T08:00:00-06:00", "2026-11-22T20:00:00-06:00",
                    "revoked")}));
  const std::string pin =
      "pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0c2FsdA==$A6xnQhbz4Vx2HuGl4lXwZ5U2I8iziLRFnhP5eNfIRvQ=";
  send("snapshot.user", chunk("u", 1, 1, 1,
                              {{{"id", "g_1"},
                                {"communityId", "com_1"},
                                {"role", "guard"},
                                {"displayName", "Juan"},
                                {"pinHash", pin}},
                               {{"id", "r_1"},
                                {"communityId", "com_1"},
                                {"role", "resident"},
                                {"displayName", "Rosa"},
                                {"pinHash", nullptr}}}));
  settle(3);
  for (const auto& r : replies) EXPECT_EQ(r["type"], "ack") << r;

  std::optional<Result<json>> day;
  reader.schedule("2026-11-22", [&](Result<json> r) { day = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return day.has_value(); }, 10s));
  ASSERT_TRUE(*day);
  std::vector<std::string> ids;
  for (const auto& g : day->value()) ids.push_back(g["id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"today", "evening"}));

  std::optional<Result<json>> bad;
  reader.schedule("2026-13-45", [&](Result<json> r) { bad = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return bad.has_value(); }, 10s));
  EXPECT_FALSE(*bad);

  std::optional<Result<Guard>> g, resident;
  reader.guard("g_1", [&](Result<Guard> r) { g = std::move(r); });
  reader.guard("r_1", [&](Result<Guard> r) { resident = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return g && resident; }, 10s));
  ASSERT_TRUE(*g);
  EXPECT_EQ(g->value().pin_hash, pin);
  ASSERT_FALSE(*resident);
  EXPECT_EQ(resident->error().code, Errc::not_found);
}

}  // namespace
}  // namespace secbox::replica
