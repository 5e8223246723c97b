// The MJPEG relay's figures, printed, never asserted: a fake Frigate
// streams ~100 KB JPEGs at 30 fps (720p-sized) over HTTP; `secbox run` relays
// them over the tunnel to the cloud simulator. Prints frames/s received by
// the cloud and the CPU (% of one core) `secbox` spends, over 10 s.
//   cmake --build build/release --target secbox-bench-frigate secbox &&
//   build/release/bench/secbox-bench-frigate
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "cloudsim/cloudsim.hpp"
#include "daemon.hpp"
#include "temp_dir.hpp"
#include "../tests/media/fake_frigate.hpp"

using namespace std::chrono_literals;
using secbox::testing::TempDir;

namespace {
long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) {
      stime = std::stol(field);
      break;
    }
  }
  return utime + stime;
}
}  // namespace

int main() {
  TempDir dir;
  secbox::testing::FakeFrigate frigate;
  ::mkdir(dir.file("sim").c_str(), 0700);
  ::mkdir(dir.file("etc").c_str(), 0700);
  ::mkdir(dir.file("state").c_str(), 0700);
  secbox::cloudsim::CloudSim sim(secbox::cloudsim::Options{
      dir.file("sim"), 0, secbox::cloudsim::CertMode::trusted, std::chrono::hours(24)});
  dir.write("etc/secbox.env", "DEVICE_ID=dev_frigate\nCLOUD_BASE_URL=" + sim.base_url() +
                                  "\nDEVICE_GATEWAY_URL=" + sim.gateway_url() + "\nCLOUD_CA_FILE=" +
                                  sim.ca_file() + "\nFRIGATE_URL=" + frigate.url() + "\n");
  dir.write("state/device.jwt", sim.issue_token("dev_frigate") + "\n");
  secbox::testing::Daemon daemon(dir, {"SECBOX_LOG_LEVEL=warn"});
  daemon.start();
  if (!sim.wait_for_type("hello", 60s)) {
    std::printf("the box did not connect; log:\n%s\n", daemon.log().c_str());
    return 1;
  }
  std::this_thread::sleep_for(2s);
  sim.clear_received();
  sim.send_text(
      R"({"v":1,"type":"frigate.stream.start","id":"c-s","ts":"2026-11-22T10:00:00Z","payload":{"camera":"hd","fps":30}})");
  if (!sim.wait_for_type("frigate.stream.started", 10s)) {
    std::printf("the stream did not start; log:\n%s\n", daemon.log().c_str());
    return 1;
  }
  std::this_thread::sleep_for(1s);
  auto frames = [&] {
    std::size_t n = 0;
    for (const auto& r : sim.received()) n += r.is_binary;
    return n;
  };
  const long hz = ::sysconf(_SC_CLK_TCK);
  const auto n0 = frames();
  const long t0 = cpu_ticks(daemon.pid());
  const int seconds = 10;
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const auto n1 = frames();
  const long t1 = cpu_ticks(daemon.pid());
  std::printf(
      "MJPEG relay, fake Frigate at 30 fps with ~100 KB frames, over TLS to the simulator, %d s:\n",
      seconds);
  std::printf("  frames forwarded: %.1f /s (%.1f MB/s)\n", static_cast<double>(n1 - n0) / seconds,
              static_cast<double>(n1 - n0) * 100006 / seconds / 1e6);
  std::printf("  secbox CPU: %.1f %% of one core\n",
              100.0 * static_cast<double>(t1 - t0) / hz / seconds);
  daemon.signal(SIGTERM);
  daemon.wait_exit(10s);
  return 0;
}
