// Cameras: ffmpeg supervised for real (lavfi testsrc →
// libx264 → HLS): a playable playlist within 5 s, restarts with back-off
// after kills, a stall detected, a crash loop contained, no child or zombie
// left behind.
#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "common/log.hpp"
#include "media/camera.hpp"
#include "media/media_service.hpp"
#include "media/supervisor.hpp"
#include "child_processes.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"

namespace secbox::media {
namespace {

using namespace std::chrono_literals;
using secbox::testing::children;
using secbox::testing::run_until;
using secbox::testing::TempDir;

const std::string kFakeFfmpeg = std::string(SECBOX_TEST_SOURCE_DIR) + "/tests/media/fake-ffmpeg";

bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

class SupervisorTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (sup) {
      bool stopped = false;
      sup->stop([&] { stopped = true; });
      EXPECT_TRUE(run_until(
          io, [&] { return stopped; }, 10s));
      sup.reset();
    }
    EXPECT_EQ(children().first, 0) << "a child was left behind";
  }

  void make(const std::string& text, SupervisorSettings s = {}) {
    ::mkdir(dir.file("hls").c_str(), 0700);
    sup = std::make_unique<CameraSupervisor>(io, parse_camera("cam", text).value(), s,
                                             dir.file("hls"));
    sup->start();
  }

  TempDir dir;
  boost::asio::io_context io;
  std::unique_ptr<CameraSupervisor> sup;
};

TEST_F(SupervisorTest, ATestsrcCameraIsLiveWithAPlayablePlaylistWithin5Seconds) {
  const auto started = std::chrono::steady_clock::now();
  make("INPUT=lavfi:testsrc\nSIZE=320x240\nFPS=15\nBITRATE=300k\n");
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().state == CameraState::live; }, 5s))
      << to_string(sup->status().state) << "\n"
      << sup->status().stderr_tail;
  const auto took = std::chrono::steady_clock::now() - started;
  std::printf(
      "first segment after %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  ASSERT_TRUE(run_until(
      io,
      [&] {
        return TempDir::read(dir.file("hls/index.m3u8")).find("#EXTINF") != std::string::npos;
      },
      5s));
  const std::string playlist = TempDir::read(dir.file("hls/index.m3u8"));
  EXPECT_NE(playlist.find("#EXT-X-PROGRAM-DATE-TIME"), std::string::npos) << playlist;
  auto seg = playlist.substr(playlist.find("seg-"));
  seg = seg.substr(0, seg.find('\n'));
  // The segment is H.264 4:2:0 at the camera's size (ffprobe, Debian's ffmpeg).
  const std::string probe =
      "ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,pix_fmt,width,height "
      "-of csv=p=0 " +
      dir.file("hls/" + seg) + " > " + dir.file("probe.txt");
  ASSERT_EQ(std::system(probe.c_str()), 0);
  EXPECT_EQ(TempDir::read(dir.file("probe.txt")).rfind("h264,320,240,yuv420p\n", 0), 0u)
      << TempDir::read(dir.file("probe.txt"));
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().fps.has_value(); }, 5s));
  EXPECT_GT(*sup->status().fps, 5.0);
}

// A daemon killed with SIGKILL leaves its ffmpeg running (its own process
// group). The next run finds it through the camera's pid file, ends it, and
// only then starts its own: never two writing one folder.
TEST_F(SupervisorTest, AnEarlierRunsFfmpegIsEndedBeforeANewOneStarts) {
  ::mkdir(dir.file("hls").c_str(), 0700);
  // The earlier run's ffmpeg: a process of its own group that we did not
  // start through the supervisor.
  pid_t earlier = ::fork();
  if (earlier == 0) {
    ::setpgid(0, 0);
    ::execl("/bin/sleep", "sleep", "1000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(earlier, 0);
  std::string stat;
  for (int i = 0; i < 100 && stat.find("sleep") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
    stat = TempDir::read("/proc/" + std::to_string(earlier) + "/stat");
  }
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) fields >> field;
  dir.write("hls/ffmpeg.pid", std::to_string(earlier) + " " + field + "\n");
  make("INPUT=lavfi:testsrc\nSIZE=320x240\nFPS=15\nBITRATE=300k\n");
  int status = 0;
  bool ended = false;
  ASSERT_TRUE(run_until(
      io, [&] { return ended = ended || ::waitpid(earlier, &status, WNOHANG) == earlier; }, 5s))
      << "the earlier ffmpeg still runs";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().pid > 0; }, 5s))
      << "then one of its own";
  const std::string recorded = TempDir::read(dir.file("hls/ffmpeg.pid"));
  EXPECT_EQ(recorded.rfind(std::to_string(sup->status().pid) + " ", 0), 0u) << recorded;
}

// A pid file whose pid now names another process (the start time differs)
// ends nothing.
TEST_F(SupervisorTest, APidFileNamingAnotherProcessEndsNothing) {
  ::mkdir(dir.file("hls").c_str(), 0700);
  dir.write("hls/ffmpeg.pid",
            std::to_string(::getpid()) + " 1\n");  // this test, with a start time it never had
  make("INPUT=lavfi:testsrc\nSIZE=320x240\nFPS=15\nBITRATE=300k\n");
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().pid > 0; }, 5s));
  EXPECT_TRUE(alive(::getpid()));
}

// ffmpeg holds none of the daemon's descriptors (a listening socket would
// outlive a crashed daemon).
TEST_F(SupervisorTest, FfmpegInheritsNoDescriptorOfTheDaemon) {
  const int leaky = ::socket(AF_INET, SOCK_STREAM, 0);  // no SOCK_CLOEXEC
  ASSERT_GE(leaky, 3);
  make("INPUT=lavfi:testsrc\nSIZE=320x240\nFPS=15\nBITRATE=300k\n");
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().pid > 0; }, 5s));
  const std::string mine = "/proc/self/fd/" + std::to_string(leaky);
  char target[128] = {};
  ASSERT_GT(::readlink(mine.c_str(), target, sizeof target - 1), 0);
  const std::string theirs = "/proc/" + std::to_string(sup->status().pid) + "/fd";
  DIR* d = ::opendir(theirs.c_str());
  ASSERT_NE(d, nullptr);
  while (auto* e = ::readdir(d)) {
    char link[128] = {};
    if (::readlink((theirs + "/" + e->d_name).c_str(), link, sizeof link - 1) > 0) {
      EXPECT_NE(std::string(link), std::string(target))
          << "ffmpeg holds the daemon's socket as fd " << e->d_name;
    }
  }
  ::closedir(d);
  ::close(leaky);
}

TEST_F(SupervisorTest, FfmpegKilledTwentyTimesIsRestartedEachTimeWithBackOff) {
  SupervisorSettings s;
  s.backoff_initial = 20ms;
  s.backoff_max = 320ms;
  s.max_failures = 1000;
  make("INPUT=lavfi:testsrc\nSIZE=160x120\nFPS=10\n", s);
  std::vector<std::chrono::milliseconds> gaps;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(run_until(
        io, [&] { return sup->status().pid > 0; }, 10s))
        << "restart " << i;
    const pid_t pid = sup->status().pid;
    ::kill(pid, SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    ASSERT_TRUE(run_until(
        io, [&] { return sup->status().pid > 0 && sup->status().pid != pid; }, 10s))
        << "restart " << i;
    gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - killed));
  }
  EXPECT_EQ(sup->status().restarts, 20);
  EXPECT_LT(gaps.front(), 300ms);
  EXPECT_GE(gaps.back(), 320ms) << "the back-off did not grow";
  EXPECT_EQ(children().second, 0) << "a killed ffmpeg was not reaped";
}

TEST_F(SupervisorTest, AStalledInputIsDetectedAndRestarted) {
  SupervisorSettings s;
  s.backoff_initial = 50ms;
  make("INPUT=lavfi:testsrc\nSIZE=160x120\nFPS=10\n", s);
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().state == CameraState::live; }, 10s))
      << sup->status().stderr_tail;
  const pid_t pid = sup->status().pid;
  ::kill(pid, SIGSTOP);  // a frozen input: the process lives, no segment comes
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().state == CameraState::stalled; }, 8s));
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().state == CameraState::live; }, 10s))
      << sup->status().stderr_tail;
  EXPECT_NE(sup->status().pid, pid);
  EXPECT_FALSE(alive(pid));
}

TEST_F(SupervisorTest, ACrashLoopIsContainedAsFailed) {
  SupervisorSettings s;
  s.hls.ffmpeg = "/bin/false";
  s.backoff_initial = 10ms;
  s.backoff_max = 1h;
  s.max_failures = 4;
  make("INPUT=lavfi:testsrc\n", s);
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().state == CameraState::failed; }, 10s));
  EXPECT_GE(sup->status().failures_last_hour, 4);
  // go2rtc's schedule: 1x five times, 5x, 10x, then the longest wait.
  run_until(
      io, [] { return false; }, 1500ms);
  EXPECT_EQ(sup->status().restarts, 7) << "a crash loop is retried ever more slowly, not at once";
  EXPECT_EQ(sup->status().state, CameraState::failed);
}

TEST_F(SupervisorTest, StopTakesTheWholeProcessGroupAndHundredKillsLeaveNoZombie) {
  SupervisorSettings s;
  s.hls.ffmpeg = kFakeFfmpeg;
  s.backoff_initial = 1ms;
  s.backoff_max = 2ms;
  s.max_failures = 1000;
  s.first_segment_grace = 1h;
  make("INPUT=lavfi:testsrc\n", s);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(run_until(
        io, [&] { return sup->status().pid > 0; }, 10s))
        << i;
    const pid_t pid = sup->status().pid;
    ::kill(pid, SIGKILL);
    ASSERT_TRUE(run_until(
        io, [&] { return sup->status().pid != pid; }, 10s))
        << i;
  }
  ASSERT_TRUE(run_until(
      io, [&] { return sup->status().pid > 0; }, 10s));
  EXPECT_EQ(children().second, 0);
  // The fake's own child (sleep in the same group) goes with it on stop: TearDown checks.
}

}  // namespace
}  // namespace secbox::media
