// The real secbox draining 100,000 events committed while it was offline,
// killed with SIGKILL at random moments of the drain and started again each
// time (as systemd would): the simulator ends with every one of the 100,000
// clientIds, none lost, and the box's table with every one acknowledged.
// Prints the kills, and how many were sent again (the cloud deduplicates).
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "cloudsim/cloudsim.hpp"
#include "daemon.hpp"
#include "paired_box.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"
#include "wait_until.hpp"

namespace secbox {
namespace {

using namespace std::chrono_literals;
using secbox::testing::Daemon;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;
using secbox::testing::wait_until;

constexpr long kEvents = 100000;

std::int64_t scalar(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::read_transaction tx(c);
  return tx.exec1(sql)[0].as<std::int64_t>();
}

TEST(QueueCrashE2E, KilledAtRandomMomentsOfA100kDrainNoEventIsLost) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  auto sim = secbox::testing::paired_simulator(dir);
  sim->set_auto_welcome(false);  // no drain until the events are in
  const std::vector<std::string> env{"DATABASE_URL=" + db.url()};
  {
    Daemon migrate(dir, env);  // the box's own schema
    migrate.start();
    ASSERT_TRUE(migrate.wait_for_log("The outbound queue is ready.", 60s)) << migrate.log();
    migrate.signal(SIGKILL);
    migrate.wait_exit(10s);
  }
  {
    pqxx::connection c(db.url());
    pqxx::work tx(c);
    tx.exec_params0(
        "INSERT INTO outbound_event (client_id, type, occurred_at, data, size_bytes) "
        "SELECT gen_random_uuid(), 'guard_note', now() - make_interval(secs => $1 - i), "
        "jsonb_build_object('guardId', 'g_1', 'text', 'Ronda ' || i), 150 FROM generate_series(1, "
        "$1) i",
        kEvents);
    tx.commit();
  }
  sim->set_auto_welcome(true);

  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> after_ms(50, 900);
  int kills = 0, killed_mid_drain = 0;
  for (int run = 0; run < 6; ++run) {
    Daemon d(dir, env);
    d.start();
    ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 60s)) << d.log();
    std::this_thread::sleep_for(std::chrono::milliseconds(after_ms(random)));
    d.signal(SIGKILL);
    d.wait_exit(10s);
    ++kills;
    const auto got = sim->distinct_events();
    if (got > 0 && got < static_cast<std::size_t>(kEvents)) ++killed_mid_drain;
    std::printf("kill %d: %zu distinct at the simulator, %ld received\n", kills, got,
                sim->events_received());
    if (got >= static_cast<std::size_t>(kEvents)) break;
  }
  EXPECT_GE(killed_mid_drain, 1) << "no kill fell inside the drain";

  Daemon last(dir, env);
  last.start();
  ASSERT_TRUE(
      wait_until([&] { return sim->distinct_events() >= static_cast<std::size_t>(kEvents); }, 240s))
      << sim->distinct_events() << " of " << kEvents << "\n"
      << last.log();
  ASSERT_TRUE(wait_until(
      [&] {
        return scalar(db.url(), "SELECT count(*) FROM outbound_event WHERE acked_at IS NULL") == 0;
      },
      60s));
  EXPECT_EQ(sim->distinct_events(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(scalar(db.url(), "SELECT count(*) FROM outbound_event"), kEvents);
  std::printf(
      "%d kills (%d inside the drain): %zu distinct clientIds at the simulator of %ld, %ld "
      "received (%ld sent again)\n",
      kills, killed_mid_drain, sim->distinct_events(), kEvents, sim->events_received(),
      sim->events_received() - kEvents);
  last.signal(SIGTERM);
  last.wait_exit(10s);
}

}  // namespace
}  // namespace secbox
