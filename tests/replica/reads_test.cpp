// What the box reads from its replica, against a real PostgreSQL filled
// through the sync path: the active bans (not deleted, not expired), the
// guests of a local day in the community's time zone (the day's edges are
// the zone's midnights), a guard only with the guard role, and the cursors.
#include "replica/reads.hpp"

#include <gtest/gtest.h>

#include "protocol/dispatcher.hpp"
#include "replica/sync.hpp"
#include "run_loop.hpp"
#include "sync_messages.hpp"
#include "test_database.hpp"

namespace secbox::replica {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TestDatabase;

class ReadsTest : public ::testing::Test {
 protected:
  TestDatabase db;
  boost::asio::io_context io;
  Database database{io, DatabaseSettings{db.url(), {}}, [](int) {}};
  protocol::MessageIds ids;
  protocol::Dispatcher dispatcher{io, [](const std::string&) { return true; }, ids};
  SyncDown sync{database, dispatcher};
  ReplicaReader reader{database};
  int applied = 0, sent = 0;

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
  void snapshot(const std::string& entity, std::int64_t version, json rows) {
    const int before = applied;
    dispatcher.dispatch(secbox::testing::snapshot_message("c-" + std::to_string(++sent), entity,
                                                          version, std::move(rows)));
    ASSERT_TRUE(run_until(
        io, [&] { return applied > before; }, 20s));
  }
  template <class T>
  Result<T> wait(std::function<void(std::function<void(Result<T>)>)> call) {
    std::optional<Result<T>> out;
    call([&](Result<T> r) { out = std::move(r); });
    EXPECT_TRUE(run_until(
        io, [&] { return out.has_value(); }, 10s));
    return out ? std::move(*out) : Result<T>(Error{Errc::internal, "no answer"});
  }
};

TEST_F(ReadsTest, ActiveBansOnlySortedByName) {
  snapshot("banned_visitor", 7,
           json::array({{{"id", "b_1"},
                         {"communityId", "com_1"},
                         {"fullName", "Zoe"},
                         {"plate", "ABC-123"},
                         {"reason", "r"},
                         {"createdAt", "2026-10-01T12:00:00Z"}},
                        {{"id", "b_2"},
                         {"communityId", "com_1"},
                         {"fullName", "Ana"},
                         {"reason", "r"},
                         {"createdAt", "2026-10-01T12:00:00Z"},
                         {"expiresAt", "2030-01-01T00:00:00Z"}},
                        {{"id", "b_3"},
                         {"communityId", "com_1"},
                         {"fullName", "Old"},
                         {"reason", "r"},
                         {"createdAt", "2020-10-01T12:00:00Z"},
                         {"expiresAt", "2021-01-01T00:00:00Z"}}}));
  auto bans = wait<BanList>([&](auto done) { reader.ban_list(done); });
  ASSERT_TRUE(bans) << bans.error().message;
  EXPECT_EQ(bans.value().version, 7);
  ASSERT_EQ(bans.value().bans.size(), 2u) << "the expired one is not a ban";
  EXPECT_EQ(bans.value().bans[0]["fullName"], "Ana");
  EXPECT_EQ(bans.value().bans[1]["plate"], "ABC-123");
  EXPECT_TRUE(bans.value().bans[0]["plate"].is_null());
  bool refreshed = false;
  reader.refresh([&] { refreshed = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return refreshed; }, 10s));
  EXPECT_EQ(reader.cursors()["banned_visitor"], 7);
  EXPECT_EQ(reader.cursors()["unit"], 0);
  EXPECT_TRUE(reader.freshness().at("banned_visitor").last_applied_at.has_value());
}

TEST_F(ReadsTest, TheGuestsOfALocalDayInTheCommunitysZone) {
  snapshot(
      "community", 1,
      json::array({{{"id", "com_1"}, {"name", "Los Pinos"}, {"timezone", "America/Mexico_City"}}}));
  snapshot("unit", 1,
           json::array({{{"id", "u_1"}, {"communityId", "com_1"}, {"label", "Casa 1"}}}));
  auto guest = [](const char* id, const char* from, const char* until,
                  const char* status = "active") {
    return json{{"id", id},          {"communityId", "com_1"}, {"unitId", "u_1"}, {"guestName", id},
                {"validFrom", from}, {"validUntil", until},    {"status", status}};
  };
  // Mexico City is UTC-6: 4 December local runs from 06:00Z to 06:00Z the next day.
  snapshot(
      "guest_authorization", 1,
      json::array(
          {guest("evening", "2026-12-05T02:00:00Z",
                 "2026-12-05T04:00:00Z"),                                  // 20:00 local, the 4th
           guest("next", "2026-12-05T07:00:00Z", "2026-12-05T09:00:00Z"),  // 01:00 local, the 5th
           guest("revoked", "2026-12-04T15:00:00Z", "2026-12-04T16:00:00Z", "revoked")}));
  auto day = wait<json>([&](auto done) { reader.schedule("2026-12-04", done); });
  ASSERT_TRUE(day) << day.error().message;
  ASSERT_EQ(day.value().size(), 1u) << day.value().dump();
  EXPECT_EQ(day.value()[0]["id"], "evening");
  EXPECT_EQ(day.value()[0]["unitLabel"], "Casa 1");
  auto bad = wait<json>([&](auto done) { reader.schedule("2026-02-30", done); });
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid);
  auto junk = wait<json>([&](auto done) { reader.schedule("yesterday", done); });
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code, Errc::invalid);
}

TEST_F(ReadsTest, OnlyAGuardIsAGuard) {
  snapshot(
      "user", 1,
      json::array(
          {{{"id", "g_1"}, {"communityId", "com_1"}, {"role", "guard"}, {"displayName", "Juan"}},
           {{"id", "r_1"},
            {"communityId", "com_1"},
            {"role", "resident"},
            {"displayName", "Rosa"}}}));
  auto g = wait<Guard>([&](auto done) { reader.guard("g_1", done); });
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g.value().display_name, "Juan");
  EXPECT_FALSE(g.value().pin_hash);
  auto resident = wait<Guard>([&](auto done) { reader.guard("r_1", done); });
  ASSERT_FALSE(resident);
  EXPECT_EQ(resident.error().code, Errc::not_found);
  EXPECT_EQ(wait<Guard>([&](auto done) { reader.guard("nobody", done); }).error().code,
            Errc::not_found);
}

}  // namespace
}  // namespace secbox::replica
