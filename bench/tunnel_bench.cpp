// Figures for the cloud tunnel, printed, never asserted:
//   - round trip of a small request/reply (hello → welcome) through the box's
//     own session (dispatcher, websocketpp, TLS) and the simulator on loopback:
//     median and p99;
//   - one-way 200-byte messages per second, the box's send path with its
//     backpressure (the last one answered so every message is counted);
//   - the same two figures for a Node `ws` client against the same simulator
//     (bench/node, when `npm ci --prefix bench/node` has been run);
//   - time from the simulator coming back up to the box's hello;
//   - resident memory of an idle, connected `secbox run` (embedded database).
//
//   cmake --build build --target secbox-bench-tunnel secbox && build/bench/secbox-bench-tunnel
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>

#include "cloudsim/cloudsim.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "daemon.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"
#include "tunnel/cloud_session.hpp"

using namespace std::chrono_literals;
using secbox::testing::run_until;
using secbox::testing::TempDir;
using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Figures {
  double rtt_median_us = 0, rtt_p99_us = 0, msgs_per_s = 0;
  double cpu_us_per_msg = 0;  // the sender's CPU time (user + system) per one-way message
};

void print(const char* who, const Figures& f) {
  std::printf(
      "%-22s rtt median %7.1f us   p99 %7.1f us   one-way 200 B: %9.0f msg/s, %5.2f us CPU/msg\n",
      who, f.rtt_median_us, f.rtt_p99_us, f.msgs_per_s, f.cpu_us_per_msg);
}

// CPU time of the calling thread (the box's loop), in microseconds.
double thread_cpu_us() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  auto us = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
  };
  return us(u.ru_utime) + us(u.ru_stime);
}

// The box's session settings against the simulator, its real backoff kept.
secbox::tunnel::SessionSettings settings_for(secbox::cloudsim::CloudSim& sim,
                                             const std::string& token_path) {
  secbox::tunnel::SessionSettings s;
  s.tunnel.gateway_url = sim.gateway_url();
  s.tunnel.device_id = "dev_bench";
  s.tunnel.version = "bench";
  s.tunnel.ca_file = sim.ca_file();
  s.rotator = secbox::tunnel::RotatorSettings{sim.base_url(), sim.ca_file(), token_path};
  s.boot_id = secbox::random_uuid();
  return s;
}

// The box's own session against the simulator.
Figures bench_box(secbox::cloudsim::CloudSim& sim, const TempDir& dir, int round_trips,
                  int messages) {
  boost::asio::io_context io;
  secbox::BlockingPool pool(io, 1);
  const auto s = settings_for(sim, dir.file("device.jwt"));
  secbox::protocol::MessageIds ids;
  secbox::protocol::Dispatcher dispatcher(io, ids);
  auto clock = secbox::system_clock_on(io);
  secbox::tunnel::CloudSession session(io, pool, dispatcher, *clock, s,
                                       sim.issue_token("dev_bench"));
  int welcomes = 0;
  dispatcher.on_session({[&](const nlohmann::json&) { ++welcomes; }, nullptr});
  session.start();
  if (!run_until(
          io, [&] { return welcomes == 1; }, 10s)) {
    std::fprintf(stderr, "the box did not connect\n");
    std::exit(1);
  }
  auto& d = session.dispatcher();
  const json hello{{"deviceId", "dev_bench"},
                   {"version", "bench"},
                   {"bootId", s.boot_id},
                   {"cursors", json::object()},
                   {"queue", {{"depth", 0}, {"oldestAt", nullptr}}}};

  Figures f;
  std::vector<double> rtts;
  for (int i = 0; i < round_trips; ++i) {
    bool done = false;
    const auto t0 = SteadyClock::now();
    d.request("hello", hello, 10s,
              [&](secbox::Result<secbox::protocol::Envelope>) { done = true; });
    while (!done) io.run_one();
    rtts.push_back(std::chrono::duration<double, std::micro>(SteadyClock::now() - t0).count());
  }
  f.rtt_median_us = percentile(rtts, 0.5);
  f.rtt_p99_us = percentile(rtts, 0.99);

  // One-way: each message is a full envelope of 200 bytes on the wire.
  json pad{{"pad", std::string(200 - 84, 'x')}};
  sim.clear_received();
  int sent = 0;
  bool last_answered = false;
  const double cpu0 = thread_cpu_us();
  const auto t0 = SteadyClock::now();
  boost::asio::steady_timer wait(io);
  std::function<void()> pump = [&] {
    while (sent < messages && session.tunnel().writable()) {
      d.send("bench.note", pad);
      ++sent;
    }
    if (sent < messages) {  // the send buffer is full: wait for it to drain
      wait.expires_after(200us);
      wait.async_wait([&](boost::system::error_code) { pump(); });
      return;
    }
    d.request("hello", hello, 60s,
              [&](secbox::Result<secbox::protocol::Envelope>) { last_answered = true; });
  };
  pump();
  while (!last_answered) io.run_one();
  f.msgs_per_s = messages / std::chrono::duration<double>(SteadyClock::now() - t0).count();
  f.cpu_us_per_msg = (thread_cpu_us() - cpu0) / messages;
  sim.clear_received();

  bool stopped = false;
  session.stop([&] { stopped = true; });
  run_until(
      io, [&] { return stopped; }, 10s);
  return f;
}

// The same against a Node `ws` client, when bench/node has its modules.
std::optional<Figures> bench_node(secbox::cloudsim::CloudSim& sim, int round_trips, int messages) {
  const std::string dir = std::string(SECBOX_SOURCE_DIR) + "/bench/node";
  if (::access((dir + "/node_modules/ws").c_str(), F_OK) != 0) return std::nullopt;
  std::string cmd = "node " + dir + "/ws_client.mjs '" + sim.gateway_url() + "' '" + sim.ca_file() +
                    "' '" + sim.issue_token("dev_node") + "' " + std::to_string(round_trips) + " " +
                    std::to_string(messages);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return std::nullopt;
  std::string text;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) text.append(buf, n);
  if (::pclose(p) != 0) return std::nullopt;
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  sim.clear_received();
  return Figures{j.value("rttMedianUs", 0.0), j.value("rttP99Us", 0.0), j.value("msgsPerS", 0.0),
                 j.value("cpuUsPerMsg", 0.0)};
}

// Simulator restarts: time from it listening again to the box's hello, with
// the box's real backoff settings (0.5 s doubling, full jitter).
std::vector<double> bench_reconnect(const TempDir& dir, int restarts) {
  secbox::cloudsim::CloudSim sim(secbox::cloudsim::Options{
      dir.file("sim2"), 0, secbox::cloudsim::CertMode::trusted, std::chrono::hours(24)});
  boost::asio::io_context io;
  secbox::BlockingPool pool(io, 1);
  const auto s = settings_for(sim, dir.file("device2.jwt"));
  secbox::protocol::MessageIds ids;
  secbox::protocol::Dispatcher dispatcher(io, ids);
  auto clock = secbox::system_clock_on(io);
  secbox::tunnel::CloudSession session(io, pool, dispatcher, *clock, s,
                                       sim.issue_token("dev_bench"));
  int welcomes = 0;
  dispatcher.on_session({[&](const nlohmann::json&) { ++welcomes; }, nullptr});
  session.start();
  run_until(
      io, [&] { return welcomes == 1; }, 10s);
  std::vector<double> ms;
  for (int i = 0; i < restarts; ++i) {
    sim.stop();
    run_until(
        io, [&] { return !session.welcomed(); }, 5s);
    run_until(
        io, [] { return false; }, 300ms);  // down for a while: a few failed attempts
    sim.clear_received();
    sim.start();
    const auto t0 = SteadyClock::now();
    if (!run_until(
            io, [&] { return sim.wait_for_type("hello", 0ms).has_value(); }, 30s))
      break;
    ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
  }
  bool stopped = false;
  session.stop([&] { stopped = true; });
  run_until(
      io, [&] { return stopped; }, 10s);
  return ms;
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  // --only box|node|reconnect|rss runs one part (for profiling).
  const std::string only = argc == 3 && std::string(argv[1]) == "--only" ? argv[2] : "";
  auto want = [&](const char* part) { return only.empty() || only == part; };
  secbox::log::configure({false, secbox::log::Level::warn});
  TempDir dir;
  ::mkdir(dir.file("sim").c_str(), 0700);
  ::mkdir(dir.file("sim2").c_str(), 0700);
  secbox::cloudsim::CloudSim sim(secbox::cloudsim::Options{
      dir.file("sim"), 0, secbox::cloudsim::CertMode::trusted, std::chrono::hours(24)});
  const int round_trips = 5000, messages = 200000;
  std::printf("tunnel over TLS on 127.0.0.1, %d round trips, %d one-way messages\n", round_trips,
              messages);
  // This machine is shared and noisy: alternate the two clients, three rounds
  // each, and report the median round of each (by msg/s).
  std::vector<Figures> box_runs, node_runs;
  bool node_missing = false;
  for (int round = 0; round < 3; ++round) {
    if (want("box")) {
      box_runs.push_back(bench_box(sim, dir, round_trips, messages));
      print("secbox (websocketpp)", box_runs.back());
    }
    if (!want("node") || node_missing) continue;
    if (auto node = bench_node(sim, round_trips, messages)) {
      node_runs.push_back(*node);
      print("node ws", node_runs.back());
    } else {
      node_missing = true;
      std::printf("node ws: skipped (run `npm ci --prefix bench/node` first)\n");
    }
  }
  auto median_run = [](std::vector<Figures> runs) {
    std::sort(runs.begin(), runs.end(),
              [](const Figures& a, const Figures& b) { return a.msgs_per_s < b.msgs_per_s; });
    return runs[runs.size() / 2];
  };
  if (!box_runs.empty()) print("median: secbox", median_run(box_runs));
  if (!node_runs.empty()) print("median: node ws", median_run(node_runs));

  auto ms = want("reconnect") ? bench_reconnect(dir, 10) : std::vector<double>{};
  if (!ms.empty()) {
    std::printf("simulator back up -> hello: median %.0f ms, max %.0f ms over %zu restarts\n",
                percentile(ms, 0.5), *std::max_element(ms.begin(), ms.end()), ms.size());
  }

  if (!want("rss")) return 0;
  // An idle `secbox run`, paired with the simulator, its embedded database up.
  ::mkdir(dir.file("etc").c_str(), 0700);
  ::mkdir(dir.file("state").c_str(), 0700);
  dir.write("etc/secbox.env", "DEVICE_ID=dev_rss\nCLOUD_BASE_URL=" + sim.base_url() +
                                  "\nDEVICE_GATEWAY_URL=" + sim.gateway_url() +
                                  "\nCLOUD_CA_FILE=" + sim.ca_file() + "\n");
  dir.write("state/device.jwt", sim.issue_token("dev_rss") + "\n");
  secbox::testing::Daemon daemon(dir, {"SECBOX_LOG_LEVEL=warn"});
  daemon.start();
  sim.clear_received();
  if (sim.wait_for_type("hello", 60s)) {
    std::this_thread::sleep_for(3s);  // settle: welcome, first timers
    std::printf("idle connected `secbox run`: VmRSS %ld KiB (embedded postmaster not counted)\n",
                rss_kib(daemon.pid()));
  } else {
    std::printf("idle connected `secbox run`: did not connect; log:\n%s\n", daemon.log().c_str());
  }
  daemon.signal(SIGTERM);
  daemon.wait_exit(10s);
  return 0;
}
