#pragma once
// The real `secbox` binary as a child process: its env (temp etc/state dirs,
// the PG* variables of the test server), its log, signals and exit status.
// Every wait is bounded.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace secbox::testing {

using namespace std::chrono_literals;

class Daemon {
 public:
  Daemon(const TempDir& dir, std::vector<std::string> extra_env = {})
      : log_(dir.file("secbox-" + std::to_string(next_id()) + ".log")) {
    ::close(::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
    ::mkdir(dir.file("etc").c_str(), 0700);
    ::chmod(dir.path().c_str(), 0711);  // the embedded cluster's user must reach state/
    env_.push_back("SECBOX_ETC_DIR=" + dir.file("etc"));
    env_.push_back("SECBOX_STATE_DIR=" + dir.file("state"));
    for (const char* keep : {"PATH", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"}) {
      if (const char* v = std::getenv(keep)) env_.push_back(std::string(keep) + "=" + v);
    }
    bool pairing_port = false, lan_port = false;
    for (auto& e : extra_env) {
      pairing_port = pairing_port || e.rfind("PAIRING_PORT=", 0) == 0;
      lan_port = lan_port || e.rfind("LAN_PORT=", 0) == 0;
      env_.push_back(std::move(e));
    }
    // Boxes side by side: any free ports.
    if (!pairing_port) env_.push_back("PAIRING_PORT=0");
    if (!lan_port) env_.push_back("LAN_PORT=0");
  }
  ~Daemon() {
    close_pipe();
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // piped: standard output and error go to a pipe the test holds (as with
  // `secbox run | tee log`) instead of the log file; close_pipe() ends it.
  void start(std::vector<std::string> args = {"run"}, bool piped = false) {
    int pipe_fds[2] = {-1, -1};
    if (piped && ::pipe(pipe_fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = piped ? pipe_fds[1] : ::open(log_.c_str(), O_WRONLY | O_APPEND);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      if (piped) ::close(pipe_fds[0]);
      std::vector<char*> argv{const_cast<char*>(SECBOX_BINARY)};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::vector<char*> envp;
      for (auto& e : env_) envp.push_back(e.data());
      envp.push_back(nullptr);
      ::execve(SECBOX_BINARY, argv.data(), envp.data());
      ::_exit(127);
    }
    if (piped) {
      ::close(pipe_fds[1]);
      pipe_ = pipe_fds[0];
    }
  }
  // Reads what the piped daemon wrote so far (bounded), without blocking.
  std::string drain_pipe() {
    std::string out;
    if (pipe_ < 0) return out;
    ::fcntl(pipe_, F_SETFL, ::fcntl(pipe_, F_GETFL) | O_NONBLOCK);
    char buf[4096];
    for (ssize_t n; out.size() < (1u << 20) && (n = ::read(pipe_, buf, sizeof buf)) > 0;)
      out.append(buf, n);
    return out;
  }
  void close_pipe() {
    if (pipe_ >= 0) ::close(pipe_);
    pipe_ = -1;
  }
  // Still running (not exited, not a zombie); an exit seen here is kept for
  // wait_exit().
  bool running() {
    if (pid_ <= 0 || exited_) return false;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    return !exited_;
  }

  bool wait_for_log(const std::string& text, std::chrono::milliseconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // The exit status, or nullopt if it is still running after limit.
  std::optional<int> wait_exit(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = status_;
      if (exited_ || ::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exited_ = false;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;
  }

  void signal(int sig) const { ::kill(pid_, sig); }
  pid_t pid() const { return pid_; }
  std::string log() const { return TempDir::read(log_); }

 private:
  static int next_id() {
    static int id = 0;
    return id++;
  }
  std::string log_;
  std::vector<std::string> env_;
  pid_t pid_ = -1;
  int pipe_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

}  // namespace secbox::testing
