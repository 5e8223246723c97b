#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "replica/migrations.hpp"
#include "test_database.hpp"

namespace secbox::replica {
namespace {

using secbox::testing::TestDatabase;

int latest() { return builtin_migrations().back().version; }

TEST(Migrations, EmbeddedInOrderWithUniqueVersions) {
  const auto& m = builtin_migrations();
  ASSERT_GE(m.size(), 2u);
  for (std::size_t i = 1; i < m.size(); ++i) EXPECT_LT(m[i - 1].version, m[i].version);
  EXPECT_EQ(m[0].name, "replica");
}

TEST(Migrations, FreshDatabaseGetsEveryTable) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  auto r = migrate(db.url());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().from_version, 0);
  EXPECT_EQ(r.value().to_version, latest());
  EXPECT_EQ(r.value().applied.size(), builtin_migrations().size());
  pqxx::connection c(db.url());
  pqxx::nontransaction tx(c);
  for (const char* table : {"community", "unit", "app_user", "guest_authorization",
                            "banned_visitor", "sync_cursor", "outbound_event"}) {
    EXPECT_TRUE(
        tx.exec1("SELECT to_regclass('" + std::string(table) + "') IS NOT NULL")[0].as<bool>())
        << table;
  }
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM sync_cursor WHERE version = 0")[0].as<int>(), 5);
}

TEST(Migrations, ReRunAppliesNothing) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(migrate(db.url()));
  auto again = migrate(db.url());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again.value().applied.empty());
  EXPECT_EQ(again.value().from_version, latest());
  EXPECT_EQ(schema_version(db.url()).value(), latest());
}

TEST(Migrations, ConcurrentStartsApplyEachMigrationOnce) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  constexpr int kStarts = 4;
  std::vector<Result<MigrationReport>> results(kStarts, Error{Errc::internal, ""});
  std::vector<std::thread> threads;
  for (int i = 0; i < kStarts; ++i) {
    threads.emplace_back([&, i] { results[i] = migrate(db.url()); });
  }
  for (auto& t : threads) t.join();
  std::size_t total_applied = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r) << r.error().message;
    total_applied += r.value().applied.size();
    EXPECT_EQ(r.value().to_version, latest());
  }
  EXPECT_EQ(total_applied, builtin_migrations().size());
  pqxx::connection c(db.url());
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<std::size_t>(),
            builtin_migrations().size());
}

TEST(Migrations, NewerSchemaIsRefused) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(migrate(db.url()));
  {
    pqxx::connection c(db.url());
    pqxx::work tx(c);
    tx.exec0("INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')");
    tx.commit();
  }
  auto r = migrate(db.url());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::schema_newer);
  EXPECT_NE(r.error().message.find("9999"), std::string::npos);
}

TEST(Migrations, FailingMigrationLeavesNothingOfItself) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  std::vector<Migration> ms = {
      {1, "good", "CREATE TABLE a (x int)"},
      {2, "bad", "CREATE TABLE b (x int); SELECT no_such_function();"},
  };
  auto r = migrate(db.url(), ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::database);
  EXPECT_NE(r.error().message.find("2_bad"), std::string::npos);
  pqxx::connection c(db.url());
  pqxx::nontransaction tx(c);
  EXPECT_TRUE(tx.exec1("SELECT to_regclass('a') IS NOT NULL")[0].as<bool>());
  EXPECT_FALSE(tx.exec1("SELECT to_regclass('b') IS NOT NULL")[0].as<bool>());
  EXPECT_EQ(tx.exec1("SELECT max(version) FROM schema_migrations")[0].as<int>(), 1);
}

TEST(Migrations, UnreachableServerIsUnavailable) {
  auto r = migrate("host=127.0.0.1 port=1 dbname=x connect_timeout=2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
}

// Expand and contract across an update and its rollback: the new version on
// trial applies its expand migration and holds back its contract one; the
// old version, started again by a rollback, runs on that schema; once the
// trial has passed the contract one is applied, and the old version is then
// refused (it will not run again: the new one is known-good).
TEST(Migrations, ARollbackFindsASchemaItCanStillUse) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  std::vector<Migration> old_version = {
      {1, "base", "CREATE TABLE guest (id text PRIMARY KEY, plate text)"}};
  std::vector<Migration> new_version = old_version;
  new_version.push_back({2, "guest_note",
                         "-- A new nullable column: the old version never names it.\n"
                         "ALTER TABLE guest ADD COLUMN note text"});
  new_version.push_back({3, "drop_plate",
                         "-- secbox: contract\n-- The old version reads plate.\n"
                         "ALTER TABLE guest DROP COLUMN plate"});
  EXPECT_FALSE(is_contract(new_version[1]));
  EXPECT_TRUE(is_contract(new_version[2]));
  ASSERT_TRUE(migrate(db.url(), old_version));

  auto trial = migrate(db.url(), new_version, MigrateOptions{false});
  ASSERT_TRUE(trial) << trial.error().message;
  EXPECT_EQ(trial.value().applied, std::vector<int>{2});
  EXPECT_EQ(trial.value().deferred, std::vector<int>{3});

  auto rollback = migrate(db.url(), old_version);
  ASSERT_TRUE(rollback) << rollback.error().message;
  EXPECT_EQ(rollback.value().unknown, std::vector<int>{2});
  {
    pqxx::connection c(db.url());
    pqxx::work tx(c);
    tx.exec0("INSERT INTO guest (id, plate) VALUES ('g1', 'ABC123')");  // what the old version does
    tx.commit();
  }

  auto passed = migrate(db.url(), new_version);
  ASSERT_TRUE(passed) << passed.error().message;
  EXPECT_EQ(passed.value().applied, std::vector<int>{3});
  auto too_late = migrate(db.url(), old_version);
  ASSERT_FALSE(too_late);
  EXPECT_EQ(too_late.error().code, Errc::schema_newer);
}

TEST(Migrations, TheContractLineCountsOnlyInTheLeadingComments) {
  EXPECT_FALSE(is_contract({1, "x", "SELECT 1; -- secbox: contract"}));
  EXPECT_FALSE(is_contract({1, "x", "-- secbox: contractual\nSELECT 1"}));
  EXPECT_TRUE(is_contract({1, "x", "-- a comment\n-- secbox: contract \r\nSELECT 1"}));
}

}  // namespace
}  // namespace secbox::replica
