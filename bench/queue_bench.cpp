// Figures for the durable outbound queue, printed, never asserted, each beside
// an anchor measured in the same run on the same PostgreSQL server:
//   - drain: N events committed while the box was offline, from the welcome
//     to the last acknowledgement, through the box's queue, session and TLS
//     to the cloud simulator over loopback. Anchor: the bare queue loop (take
//     the 500 oldest unacknowledged rows, mark them, commit, until none are
//     left) in one PL/pgSQL DO block on the same rows;
//   - start: from the database being ready to the queue's figures (depth,
//     bytes, oldest) with N queued;
//   - durable enqueue: 32 callers, each enqueueing its next event as soon as
//     the previous one is answered (answered only once committed): events/s
//     and answer latency. Anchor: one INSERT and one synchronous COMMIT per
//     event on one connection.
// After each drain the queue's incremental figures are compared with a
// recount.
//
//   cmake --build build/release --target secbox-bench-queue
//   pg_virtualenv -t build/release/bench/secbox-bench-queue [N ...]   (default 100000 1000000)
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "cloudsim/cloudsim.hpp"
#include "common/ids.hpp"
#include "bench_database.hpp"
#include "common/log.hpp"
#include "replica/queue.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "tunnel/cloud_session.hpp"

using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;
using SteadyClock = std::chrono::steady_clock;
namespace replica = secbox::replica;

namespace {

double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

// This process's resident memory (the queue, the simulator and the session).
double resident_mb() {
  long size = 0, pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &size, &pages) != 2) pages = 0;
    std::fclose(f);
  }
  return static_cast<double>(pages) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1e6;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Db : secbox::bench::BenchDatabase {
  Db() : BenchDatabase("secbox_bench_queue") {}
};

// N guard notes, as offline guards leave them, and a clean table (what a
// vacuum leaves) so every run starts alike.
void fill(const Db& db, long n) {
  pqxx::connection c(db.url());
  {
    pqxx::work tx(c);
    tx.exec0("TRUNCATE outbound_event");
    tx.exec_params0(
        "INSERT INTO outbound_event (client_id, type, occurred_at, data, size_bytes) "
        "SELECT gen_random_uuid(), 'guard_note', now() - make_interval(secs => $1 - i), "
        "jsonb_build_object('guardId', 'g_1', 'text', 'Portón revisado, ronda ' || i), 150 "
        "FROM generate_series(1, $1) i",
        n);
    tx.commit();
  }
  pqxx::nontransaction tx(c);
  tx.exec0("VACUUM ANALYZE outbound_event");
}

double bare_loop(const Db& db, long n) {
  pqxx::connection c(db.url());
  pqxx::nontransaction tx(c);
  const auto t0 = SteadyClock::now();
  tx.exec0(R"(DO $$
    DECLARE done integer;
    BEGIN
      LOOP
        UPDATE outbound_event SET acked_at = now()
         WHERE seq IN (SELECT seq FROM outbound_event WHERE acked_at IS NULL ORDER BY seq LIMIT 500);
        GET DIAGNOSTICS done = ROW_COUNT;
        COMMIT;
        EXIT WHEN done = 0;
      END LOOP;
    END $$)");
  return static_cast<double>(n) / seconds_since(t0);
}

struct Recount {
  long depth = 0, bytes = 0;
};
Recount recount(const Db& db) {
  pqxx::connection c(db.url());
  pqxx::read_transaction tx(c);
  auto r = tx.exec1(
      "SELECT count(*), COALESCE(sum(size_bytes), 0) FROM outbound_event WHERE acked_at IS NULL");
  return {r[0].as<long>(), r[1].as<long>()};
}

struct Box {
  boost::asio::io_context io;
  secbox::BlockingPool pool{io, 1};
  replica::Database database;
  secbox::protocol::MessageIds ids;
  secbox::protocol::Dispatcher dispatcher{io, ids};
  std::unique_ptr<replica::OutboundQueue> queue;
  explicit Box(const Db& db) : database(io, replica::DatabaseSettings{db.url(), {}}, [](int) {}) {}
  ~Box() {
    if (queue) queue->stop([] {});
    bool stopped = false;
    database.stop([&] { stopped = true; });
    run_until(
        io, [&] { return stopped; }, 10s);
  }
  bool up() {
    database.start();
    return run_until(
        io, [&] { return database.ready(); }, 60s);
  }
};

void drain(const Db& db, long n, TempDir& dir) {
  fill(db, n);
  const double anchor = bare_loop(db, n);
  fill(db, n);
  Box box(db);
  if (!box.up()) return void(std::printf("the database did not come up\n"));
  ::malloc_trim(0);  // what earlier runs freed does not count
  const double before_rss_mb = resident_mb();
  const auto t_start = SteadyClock::now();
  box.queue = std::make_unique<replica::OutboundQueue>(box.io, box.database, box.dispatcher);
  box.queue->start();
  run_until(
      box.io, [&] { return box.queue->stats().depth == n; }, 60s);
  const double start_s = seconds_since(t_start);
  ::malloc_trim(0);
  const double start_rss_mb = resident_mb();

  secbox::cloudsim::CloudSim sim(secbox::cloudsim::Options{
      dir.file("sim"), 0, secbox::cloudsim::CertMode::trusted, std::chrono::hours(24)});
  secbox::tunnel::SessionSettings s;
  s.tunnel.gateway_url = sim.gateway_url();
  s.tunnel.device_id = "dev_bench";
  s.tunnel.version = "bench";
  s.tunnel.ca_file = sim.ca_file();
  s.rotator = secbox::tunnel::RotatorSettings{sim.base_url(), sim.ca_file(), dir.file("device.jwt"),
                                              3600s, 7200s};
  s.boot_id = secbox::random_uuid();
  auto clock = secbox::system_clock_on(box.io);
  secbox::tunnel::CloudSession session(box.io, box.pool, box.dispatcher, *clock, s,
                                       sim.issue_token("dev_bench"));
  auto& queue = *box.queue;
  session.set_hello_source([&] {
    auto h = secbox::tunnel::empty_hello_state();
    h.queue_depth = queue.stats().depth;
    h.oldest_at = queue.stats().oldest_at;
    return h;
  });
  SteadyClock::time_point t_welcome{};
  box.dispatcher.on_session(
      {[&](const nlohmann::json&) { t_welcome = SteadyClock::now(); }, nullptr});
  session.start();
  const bool drained = run_until(
      box.io,
      [&] {
        return sim.distinct_events() >= static_cast<std::size_t>(n) && queue.stats().depth == 0;
      },
      std::chrono::seconds(60 + n / 2000));
  const double drain_s = seconds_since(t_welcome);
  const double rate = static_cast<double>(n) / drain_s;
  const auto hello = sim.wait_for_type("hello", 1s);
  const auto r = recount(db);
  std::printf(
      "drain %8ld events: %s in %6.2f s = %8.0f events/s; bare loop %8.0f events/s; box/bare %5.1f "
      "%%\n",
      n, drained ? "all acknowledged" : "NOT DRAINED", drain_s, rate, anchor,
      100.0 * rate / anchor);
  std::printf(
      "      start with %ld queued: figures in %.3f s, the bench's RSS %.1f MB (%.1f MB before the "
      "queue "
      "started); hello said depth %s; %ld received for %zu distinct\n",
      n, start_s, start_rss_mb, before_rss_mb,
      hello ? hello->message["payload"].value("queue", nlohmann::json()).dump().c_str() : "(none)",
      sim.events_received(), sim.distinct_events());
  std::printf(
      "      figures after the drain: depth %lld bytes %lld; recount: depth %ld bytes %ld (%s)\n",
      static_cast<long long>(queue.stats().depth), static_cast<long long>(queue.stats().bytes),
      r.depth, r.bytes,
      r.depth == queue.stats().depth && r.bytes == queue.stats().bytes ? "equal" : "DIFFERENT");
  bool stopped = false;
  session.stop([&] { stopped = true; });
  run_until(
      box.io, [&] { return stopped; }, 10s);
}

void enqueue(const Db& db, long total) {
  {
    pqxx::connection c(db.url());
    pqxx::nontransaction tx(c);
    tx.exec0("TRUNCATE outbound_event");
  }
  // Anchor: one synchronous commit per event.
  const long anchor_n = std::max(500L, total / 10);
  double anchor = 0;
  {
    pqxx::connection c(db.url());
    const auto t0 = SteadyClock::now();
    for (long i = 0; i < anchor_n; ++i) {
      pqxx::work tx(c);
      tx.exec0("SET LOCAL synchronous_commit = on");
      tx.exec_params0(
          "INSERT INTO outbound_event (client_id, type, occurred_at, data, size_bytes) "
          "VALUES ($1::uuid, 'guard_note', now(), $2::jsonb, 150)",
          secbox::random_uuid(), R"({"guardId":"g_1","text":"Portón revisado"})");
      tx.commit();
    }
    anchor = static_cast<double>(anchor_n) / seconds_since(t0);
  }
  Box box(db);
  if (!box.up()) return;
  replica::QueueLimits limits;
  limits.max_rows = 10'000'000;
  limits.max_bytes = 1ll << 40;
  box.queue =
      std::make_unique<replica::OutboundQueue>(box.io, box.database, box.dispatcher, limits);
  box.queue->start();
  run_until(
      box.io, [] { return false; }, 200ms);
  constexpr int kCallers = 32;
  long started = 0, answered = 0, failed = 0;
  std::vector<double> latency_ms;
  latency_ms.reserve(static_cast<std::size_t>(total));
  std::function<void()> next = [&] {
    if (started >= total) return;
    ++started;
    const auto t = SteadyClock::now();
    box.queue->enqueue(replica::OutboundEvent{secbox::random_uuid(),
                                              "guard_note",
                                              "2026-12-03T10:00:00Z",
                                              {{"guardId", "g_1"}, {"text", "Portón revisado"}}},
                       [&, t](secbox::Result<replica::Enqueued> r) {
                         latency_ms.push_back(seconds_since(t) * 1000);
                         ++answered;
                         failed += !r;
                         next();
                       });
  };
  const auto t0 = SteadyClock::now();
  for (int i = 0; i < kCallers; ++i) next();
  run_until(
      box.io, [&] { return answered == total; }, 300s);
  const double rate = static_cast<double>(answered) / seconds_since(t0);
  std::printf(
      "enqueue %ld events, %d callers: %8.0f events/s, %ld failed; answer p50 %.2f ms p99 %.2f ms "
      "max %.2f ms;"
      " one commit per event %6.0f events/s (x%.1f)\n",
      answered, kCallers, rate, failed, percentile(latency_ms, 0.5), percentile(latency_ms, 0.99),
      percentile(latency_ms, 1.0), anchor, rate / anchor);
  const auto r = recount(db);
  std::printf("      %lld commits, %.1f events a commit\n",
              static_cast<long long>(box.queue->commits()),
              static_cast<double>(answered) /
                  static_cast<double>(std::max<std::int64_t>(1, box.queue->commits())));
  std::printf("      figures: depth %lld bytes %lld; recount: depth %ld bytes %ld (%s)\n",
              static_cast<long long>(box.queue->stats().depth),
              static_cast<long long>(box.queue->stats().bytes), r.depth, r.bytes,
              box.queue->stats().depth == r.depth && box.queue->stats().bytes == r.bytes
                  ? "equal"
                  : "DIFFERENT");
}

}  // namespace

int main(int argc, char** argv) {
  secbox::log::configure({false, secbox::log::Level::warn});
  std::vector<long> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atol(argv[i]));
  if (sizes.empty()) sizes = {100000, 1000000};
  try {
    Db db;
    TempDir dir;
    ::mkdir(dir.file("sim").c_str(), 0700);
    {
      Box migrate(db);  // the box's own schema
      if (!migrate.up()) throw std::runtime_error("the database did not come up");
    }
    enqueue(db, 20000);
    for (long n : sizes) drain(db, n, dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "secbox-bench-queue: %s\n", e.what());
    return 1;
  }
  return 0;
}
