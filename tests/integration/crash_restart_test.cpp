// The real secbox killed with SIGKILL and started again, as systemd or a
// person would: it comes back whole. Its ports are free (no child held
// them), and the camera has one ffmpeg, the new run's (the earlier run's is
// ended through the camera's pid file).
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <thread>

#include "daemon.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"

namespace secbox {
namespace {

using namespace std::chrono_literals;
using secbox::testing::Daemon;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// ffmpeg processes writing into `folder` (they run in the camera's folder).
std::set<pid_t> ffmpegs_writing(const std::string& folder) {
  std::set<pid_t> found;
  DIR* d = ::opendir("/proc");
  while (auto* e = ::readdir(d)) {
    const std::string pid = e->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + pid + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    char cwd[4096] = {0};
    const ssize_t n = ::readlink(("/proc/" + pid + "/cwd").c_str(), cwd, sizeof cwd - 1);
    if (cmdline.rfind("ffmpeg", 0) == 0 && n > 0 &&
        std::string(cwd, static_cast<std::size_t>(n)) == folder) {
      found.insert(std::stoi(pid));
    }
  }
  ::closedir(d);
  return found;
}

TEST(CrashRestartE2E, AfterSigkillTheNextRunHasItsPortsAndOneFfmpegPerCamera) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  ::mkdir(dir.file("etc").c_str(), 0700);
  ::mkdir(dir.file("etc/cameras").c_str(), 0700);
  dir.write("etc/cameras/gate.env", "INPUT=lavfi:testsrc\nSIZE=320x240\nFPS=10\nBITRATE=200k\n");
  const std::string pairing_port = std::to_string(free_port());
  const std::vector<std::string> env{"DATABASE_URL=" + db.url(), "PAIRING_PORT=" + pairing_port};
  const std::string folder = dir.file("state/hls/gate");
  struct Sweep {  // nothing of this test outlives it, whatever fails
    std::string folder;
    ~Sweep() {
      for (pid_t p : ffmpegs_writing(folder)) ::kill(p, SIGKILL);
    }
  } sweep{folder};

  Daemon first(dir, env);
  first.start();
  ASSERT_TRUE(first.wait_for_log("Camera is live.", 20s)) << first.log();
  ASSERT_TRUE(first.wait_for_log("Pairing form ready.", 5s)) << first.log();
  const auto before = ffmpegs_writing(folder);
  ASSERT_EQ(before.size(), 1u);
  first.signal(SIGKILL);
  ASSERT_TRUE(first.wait_exit(5s));
  ASSERT_EQ(ffmpegs_writing(folder), before)
      << "the earlier ffmpeg outlives its daemon (its own process group)";

  Daemon second(dir, env);
  second.start();
  ASSERT_TRUE(second.wait_for_log("Camera is live.", 20s)) << second.log();
  EXPECT_TRUE(second.wait_for_log("Pairing form ready.", 5s)) << second.log();
  EXPECT_EQ(second.log().find("cannot listen"), std::string::npos) << second.log();
  EXPECT_NE(second.log().find("Ending the ffmpeg an earlier run left"), std::string::npos)
      << second.log();
  const auto after = ffmpegs_writing(folder);
  EXPECT_EQ(after.size(), 1u) << "one ffmpeg per camera";
  for (pid_t p : after) EXPECT_EQ(before.count(p), 0u) << "the new run's, not the orphan";
  second.signal(SIGTERM);
  EXPECT_EQ(second.wait_exit(15s), 0) << second.log();
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(ffmpegs_writing(folder).empty());
}

}  // namespace
}  // namespace secbox
