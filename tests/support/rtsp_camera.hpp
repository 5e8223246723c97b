#pragma once
// A real RTSP camera for the tests: tests/support/rtsp_camera.py (GStreamer's
// rtsp-server, H.264 passed through from a file, digest auth) as a child
// process on 127.0.0.1. freeze() stops its video with the connection open
// (a camera that hangs), thaw() lets it flow again; the destructor ends it.
// Every wait is bounded.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace secbox::testing {

// An H.264 file as a camera records it: testsrc2, `seconds` long, a keyframe
// every `keyframe_s`, no scene-cut keyframes. Empty on failure.
// `hevc`: H.265 (Main, as cameras send it) instead of H.264.
inline std::string make_camera_file(const TempDir& dir, const std::string& name,
                                    const std::string& size, int seconds, int keyframe_s,
                                    bool hevc = false) {
  const std::string path = dir.file(name);
  const std::string gop = std::to_string(30 * keyframe_s);
  const std::string codec =
      hevc ? " -c:v libx265 -preset ultrafast -x265-params log-level=error:scenecut=0 -tag:v hvc1"
           : " -c:v libx264 -preset ultrafast -sc_threshold 0";
  const std::string cmd = "ffmpeg -v error -y -f lavfi -i testsrc2=size=" + size + ":rate=30 -t " +
                          std::to_string(seconds) + codec + " -g " + gop + " -keyint_min " + gop +
                          " -pix_fmt yuv420p -b:v 1M '" + path + "' </dev/null";
  return std::system(cmd.c_str()) == 0 ? path : std::string();
}

class RtspCamera {
 public:
  // `mounts`: "name=file.mp4" each ("name=file.mp4:h265" for H.265). port 0: one the kernel picks.
  // `auth`: "digest" (as most cameras), "basic" or "none".
  RtspCamera(const TempDir& dir, std::vector<std::string> mounts, std::string user,
             std::string password, int port = 0, std::string auth = "digest")
      : out_(dir.file("rtsp-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++) +
                      ".out")) {
    std::vector<std::string> args{
        "/usr/bin/python3", std::string(SECBOX_TEST_SOURCE_DIR) + "/tests/support/rtsp_camera.py",
        "--port",           std::to_string(port),
        "--user",           user,
        "--password",       password,
        "--auth",           auth};
    for (auto& m : mounts) args.insert(args.end(), {"--mount", m});
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      std::ifstream in(out_);
      std::string line;
      if (std::getline(in, line) && line.rfind("{\"port\": ", 0) == 0) {
        port_ = std::atoi(line.c_str() + 9);
        break;
      }
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~RtspCamera() { stop(); }
  RtspCamera(const RtspCamera&) = delete;
  RtspCamera& operator=(const RtspCamera&) = delete;

  int port() const { return port_; }  // 0: it did not start (output())
  std::string output() const {
    std::ifstream in(out_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  void freeze() const { ::kill(pid_, SIGUSR1); }
  void thaw() const { ::kill(pid_, SIGUSR2); }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (::kill(pid_, 0) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string out_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace secbox::testing
