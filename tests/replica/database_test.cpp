#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "replica/database.hpp"
#include "replica/migrations.hpp"
#include "session.hpp"
#include "loop_probe.hpp"
#include "run_loop.hpp"
#include "test_database.hpp"

namespace secbox::replica {
namespace {

using secbox::testing::run_until;
using secbox::testing::TestDatabase;

// Starts a Database on io against db and runs the loop until it is ready.
void start_and_wait(boost::asio::io_context& io, Database& database) {
  bool ready = false;
  database.on_ready([&] { ready = true; });
  database.start();
  ASSERT_TRUE(run_until(io, [&] { return ready; }));
}

TEST(Database, MigratesOnStartAndStops) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  boost::asio::io_context io;
  Database database(io, DatabaseSettings{db.url(), {}}, [](int) { FAIL(); });
  start_and_wait(io, database);
  EXPECT_EQ(database.schema_version(), builtin_migrations().back().version);
  bool stopped = false;
  database.stop([&] { stopped = true; });
  EXPECT_TRUE(run_until(io, [&] { return stopped; }));
}

TEST(Database, LoopStaysResponsiveDuringASlowQuery) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  boost::asio::io_context io;
  Database database(io, DatabaseSettings{db.url(), {}}, [](int) {});
  start_and_wait(io, database);

  int ticks_when_done = -1;
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id callback_thread;
  secbox::testing::LoopProbe probe(io, std::chrono::milliseconds(10));
  database.run<int>(
      [](Session& s) -> Result<int> {
        pqxx::nontransaction tx(s.conn());
        tx.exec("SELECT pg_sleep(0.5)");
        return 1;
      },
      [&](Result<int> r) {
        EXPECT_TRUE(r);
        callback_thread = std::this_thread::get_id();
        ticks_when_done = probe.ticks();
        probe.stop();
      });
  ASSERT_TRUE(run_until(io, [&] { return ticks_when_done >= 0; }));
  // Had the query run on the loop, no tick could have fired before it ended.
  EXPECT_GE(ticks_when_done, 10);
  EXPECT_EQ(callback_thread, loop_thread);
}

TEST(Database, SqlErrorsBecomeErrorsNotExceptions) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  boost::asio::io_context io;
  Database database(io, DatabaseSettings{db.url(), {}}, [](int) {});
  start_and_wait(io, database);
  std::optional<Error> error;
  database.run<int>(
      [](Session& s) -> Result<int> {
        pqxx::nontransaction tx(s.conn());
        tx.exec("SELECT * FROM no_such_table");
        return 1;
      },
      [&](Result<int> r) {
        ASSERT_FALSE(r);
        error = r.error();
      });
  run_until(io, [&] { return error.has_value(); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, Errc::database);
  EXPECT_NE(error->message.find("no_such_table"), std::string::npos);
}

TEST(Database, UnreachableServerIsRetriedNotFatal) {
  boost::asio::io_context io;
  bool fatal = false;
  Database database(io, DatabaseSettings{"host=127.0.0.1 port=1 dbname=x connect_timeout=1", {}},
                    [&](int) { fatal = true; });
  database.start();
  run_until(
      io, [] { return false; }, std::chrono::milliseconds(1500));
  EXPECT_FALSE(fatal);
  EXPECT_FALSE(database.ready());
  bool stopped = false;
  database.stop([&] { stopped = true; });
  EXPECT_TRUE(run_until(io, [&] { return stopped; }));
}

TEST(Database, NewerSchemaIsFatal) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  {
    pqxx::connection c(db.url());
    pqxx::work tx(c);
    tx.exec0(
        "CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    tx.exec0("INSERT INTO schema_migrations VALUES (9999, 'future')");
    tx.commit();
  }
  boost::asio::io_context io;
  int exit_code = 0;
  Database database(io, DatabaseSettings{db.url(), {}}, [&](int code) { exit_code = code; });
  database.start();
  run_until(io, [&] { return exit_code != 0; });
  EXPECT_EQ(exit_code, 3);
}

}  // namespace
}  // namespace secbox::replica
