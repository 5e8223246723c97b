// Figures for a snapshot (cloud-protocol §5), printed, never asserted, beside
// an anchor measured in the same run on the same PostgreSQL server:
//   - the box: N banned_visitor rows in chunks of 5,000, handed to the box's
//     dispatcher as the text frames the tunnel delivers (parse, shape checks,
//     staging, swap), over an old set of the same size; from the first chunk
//     to the ack (less the bench's own time making the frames), and from the
//     last chunk to the ack;
//   - the anchor: BEGIN; TRUNCATE; COPY of the same rows, of the same width,
//     into a table with the same columns and indexes; COMMIT;
//   - the process's peak resident memory after each size.
//
//   cmake --build build/release --target secbox-bench-snapshot
//   pg_virtualenv -t build/release/bench/secbox-bench-snapshot [N ...]   (default 100000 500000)
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "bench_database.hpp"
#include "common/log.hpp"
#include "replica/database.hpp"
#include "replica/sync.hpp"
#include "run_loop.hpp"
#include "protocol/dispatcher.hpp"

using namespace std::chrono_literals;
using secbox::testing::run_until;
using SteadyClock = std::chrono::steady_clock;
using json = nlohmann::json;
namespace replica = secbox::replica;

namespace {

double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

struct Db : secbox::bench::BenchDatabase {
  Db() : BenchDatabase("secbox_bench_snapshot") {}
};

json ban(long i, const std::string& set) {
  return {{"id", "bv_" + set + "_" + std::to_string(i)},
          {"communityId", "com_1"},
          {"fullName", "Visitante Número " + std::to_string(i) + " de Prueba"},
          {"plate", "ABC" + std::to_string(100000 + i)},
          {"photoUrl", nullptr},
          {"reason", "Robo de paquetería en la caseta norte"},
          {"createdAt", "2026-10-01T12:00:00Z"},
          {"expiresAt", nullptr}};
}

constexpr long kChunk = 5000;
long chunks_for(long n) { return (n + kChunk - 1) / kChunk; }

// Chunk c (from 0) of a snapshot of n rows, made when it is sent so that the
// bench's own memory stays out of the figure.
std::string frame(long n, long c, const std::string& set, std::int64_t version) {
  json rows = json::array();
  for (long i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) rows.push_back(ban(i, set));
  return json{{"v", 1},
              {"type", "snapshot.banned_visitor"},
              {"id", "c-" + set + "-" + std::to_string(c + 1)},
              {"ts", "2026-12-03T10:00:00Z"},
              {"payload",
               {{"snapshotId", "snap_" + set},
                {"version", version},
                {"chunk", c + 1},
                {"chunks", chunks_for(n)},
                {"rows", std::move(rows)}}}}
      .dump();
}

double anchor(const Db& db, long n) {
  pqxx::connection c(db.url());
  {
    pqxx::work tx(c);
    tx.exec0("DROP TABLE IF EXISTS anchor_ban");
    tx.exec0("CREATE TABLE anchor_ban (LIKE banned_visitor INCLUDING ALL)");
    tx.commit();
  }
  const auto t0 = SteadyClock::now();
  pqxx::work tx(c);
  tx.exec0("TRUNCATE anchor_ban");
  {
    pqxx::stream_to copy(tx, "anchor_ban",
                         std::vector<std::string>{"id", "version", "deleted", "community_id",
                                                  "full_name", "plate", "reason", "created_at"});
    for (long i = 0; i < n; ++i) {
      const json r = ban(i, "anchor");
      copy << std::make_tuple(r["id"].get<std::string>(), 1, false,
                              r["communityId"].get<std::string>(), r["fullName"].get<std::string>(),
                              r["plate"].get<std::string>(), r["reason"].get<std::string>(),
                              r["createdAt"].get<std::string>());
    }
    copy.complete();
  }
  tx.commit();
  return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  secbox::log::configure({false, secbox::log::Level::warn});
  std::vector<long> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atol(argv[i]));
  if (sizes.empty()) sizes = {100000, 500000};
  try {
    Db db;
    boost::asio::io_context io;
    replica::Database database(io, replica::DatabaseSettings{db.url(), {}}, [](int) {});
    database.start();
    if (!run_until(
            io, [&] { return database.ready(); }, 60s))
      throw std::runtime_error("no database");
    secbox::protocol::MessageIds ids;
    std::vector<json> replies;
    secbox::protocol::Dispatcher dispatcher(
        io,
        [&](const std::string& text) {
          replies.push_back(json::parse(text));
          return true;
        },
        ids);
    replica::SyncDown sync(database, dispatcher);
    std::int64_t version = 1;
    for (long n : sizes) {
      // The old set the snapshot replaces.
      for (long c = 0; c < chunks_for(n); ++c) {
        dispatcher.dispatch(frame(n, c, "old" + std::to_string(n), version));
        io.restart();
        io.poll();
      }
      if (!run_until(
              io, [&] { return !replies.empty(); }, 600s))
        throw std::runtime_error("no ack for the old set");
      replies.clear();
      const std::int64_t next_version = ++version;
      ++version;
      const double copy_s = anchor(db, n);
      const auto t0 = SteadyClock::now();
      SteadyClock::time_point t_last;
      // Frames come one at a time, as from the socket: the loop turns between them.
      double making = 0;  // time spent making frames, not the box's
      for (long c = 0; c < chunks_for(n); ++c) {
        const auto t_make = SteadyClock::now();
        const std::string text = frame(n, c, "new" + std::to_string(n), next_version);
        making += seconds_since(t_make);
        if (c + 1 == chunks_for(n)) t_last = SteadyClock::now();
        dispatcher.dispatch(text);
        io.restart();
        io.poll();
      }
      if (!run_until(
              io, [&] { return !replies.empty(); }, 600s))
        throw std::runtime_error("no ack");
      const double total = seconds_since(t0) - making, after_last = seconds_since(t_last);
      const bool acked = replies.back()["type"] == "ack";
      replies.clear();
      pqxx::connection c(db.url());
      pqxx::read_transaction tx(c);
      const auto rows =
          tx.exec1("SELECT count(*) FROM banned_visitor WHERE NOT deleted")[0].as<long>();
      rusage u{};
      ::getrusage(RUSAGE_SELF, &u);
      std::printf(
          "snapshot %7ld rows (%zu chunks): %s in %6.2f s (%5.2f s after the last chunk); "
          "TRUNCATE + COPY %5.2f s; box/anchor %4.1fx; %ld rows in the table; RSS %ld kB, peak %ld "
          "kB\n",
          n, static_cast<std::size_t>(chunks_for(n)), acked ? "acked" : "REFUSED", total,
          after_last, copy_s, total / copy_s, rows, rss_kb(), u.ru_maxrss);
    }
    bool stopped = false;
    database.stop([&] { stopped = true; });
    run_until(
        io, [&] { return stopped; }, 10s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "secbox-bench-snapshot: %s\n", e.what());
    return 1;
  }
  return 0;
}
