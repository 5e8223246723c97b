// The real secbox, its replica and the simulator: snapshots survive SIGKILL at
// any moment (between chunks, during the swap) with the old set intact or the
// new one whole, never a mix; hello carries the replica's cursors.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "cloudsim/cloudsim.hpp"
#include "daemon.hpp"
#include "paired_box.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"

namespace secbox {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using secbox::testing::Daemon;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

class ReplicaE2E : public ::testing::Test {
 protected:
  TestDatabase db;
  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim;
  int sent = 0;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    sim = secbox::testing::paired_simulator(dir);
  }

  std::unique_ptr<Daemon> start() {
    sim->clear_received();
    auto d = std::make_unique<Daemon>(dir, std::vector<std::string>{"DATABASE_URL=" + db.url()});
    d->start();
    EXPECT_TRUE(sim->wait_for_type("hello", 30s)) << d->log();
    return d;
  }

  static json rows(const std::string& prefix, int n) {
    json out = json::array();
    for (int i = 0; i < n; ++i) {
      out.push_back({{"id", prefix + std::to_string(i)},
                     {"communityId", "com_1"},
                     {"label", prefix + " " + std::to_string(i)}});
    }
    return out;
  }
  std::string send_chunk(const std::string& snapshot, std::int64_t version, int i, int n, json r) {
    const std::string id = "c-" + std::to_string(++sent);
    sim->send_text(json{{"v", 1},
                        {"type", "snapshot.unit"},
                        {"id", id},
                        {"ts", "2026-11-22T10:00:00Z"},
                        {"payload",
                         {{"snapshotId", snapshot},
                          {"version", version},
                          {"chunk", i},
                          {"chunks", n},
                          {"rows", std::move(r)}}}}
                       .dump());
    return id;
  }
  std::optional<cloudsim::Received> reply_to(const std::string& id,
                                             std::chrono::milliseconds limit) {
    return sim->wait_for(
        [id](const cloudsim::Received& r) { return r.message.value("re", "") == id; }, limit);
  }
  // (rows, distinct label prefixes, cursor)
  std::tuple<int, int, std::int64_t> state() {
    pqxx::connection c(db.url());
    pqxx::read_transaction tx(c);
    auto r = tx.exec1(
        "SELECT count(*), count(DISTINCT split_part(label, ' ', 1)) FROM unit WHERE NOT deleted");
    auto v = tx.exec1("SELECT version FROM sync_cursor WHERE entity = 'unit'");
    return {r[0].as<int>(), r[1].as<int>(), v[0].as<std::int64_t>()};
  }
};

TEST_F(ReplicaE2E, KilledBetweenChunksOrDuringTheSwapTheSetIsOldOrNewNeverAMix) {
  auto d = start();
  const auto first = send_chunk("s0", 100, 1, 1, rows("old", 50));
  auto ack = reply_to(first, 20s);
  ASSERT_TRUE(ack) << d->log();
  ASSERT_EQ(ack->message["type"], "ack");
  EXPECT_EQ(state(), std::make_tuple(50, 1, std::int64_t{100}));

  // Killed between chunks: the old set, and hello says so.
  send_chunk("s1", 200, 1, 3, rows("mid", 5000));
  send_chunk("s1", 200, 2, 3, rows("mid", 5000));
  std::this_thread::sleep_for(300ms);
  d->signal(SIGKILL);
  d->wait_exit(5s);
  EXPECT_EQ(state(), std::make_tuple(50, 1, std::int64_t{100}));
  d = start();
  auto hello = sim->wait_for_type("hello", 1s);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->message["payload"]["cursors"]["unit"], 100);

  // Killed around the swap of a 15,000-row snapshot, at several moments.
  std::int64_t version = 300;
  int swapped = 0;
  for (int delay_ms : {0, 30, 100, 300, 700, 1500}) {
    const auto before = state();
    const std::string name = "v" + std::to_string(version);
    json all = rows(name, 15000);
    send_chunk(name, version, 1, 3, json(all.begin(), all.begin() + 5000));
    send_chunk(name, version, 2, 3, json(all.begin() + 5000, all.begin() + 10000));
    send_chunk(name, version, 3, 3, json(all.begin() + 10000, all.end()));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    d->signal(SIGKILL);
    d->wait_exit(5s);
    const auto after = state();
    const bool old_set = after == before;
    const bool new_set = after == std::make_tuple(15000, 1, version);
    EXPECT_TRUE(old_set || new_set)
        << "after a kill " << delay_ms << " ms past the last chunk: " << std::get<0>(after)
        << " rows of " << std::get<1>(after) << " snapshots, cursor " << std::get<2>(after);
    swapped += new_set;
    d = start();
    ++version;
  }
  std::printf("swaps committed before the kill: %d of 6\n", swapped);

  // And a snapshot left alone completes.
  const auto last = send_chunk("final", 900, 1, 1, rows("final", 10));
  ack = reply_to(last, 20s);
  ASSERT_TRUE(ack) << d->log();
  EXPECT_EQ(state(), std::make_tuple(10, 1, std::int64_t{900}));
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait_exit(5s), 0) << d->log();
}

}  // namespace
}  // namespace secbox
