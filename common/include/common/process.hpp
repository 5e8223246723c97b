#pragma once
// Running a program as an argument vector (never through a shell), optionally
// as another user, with a time limit and capped output. run_process() blocks
// until the child is gone: call it from a BlockingPool task.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace secbox {

struct UserInfo {
  std::string name;
  uid_t uid;
  gid_t gid;
  std::string home;
};

std::optional<UserInfo> lookup_user(const std::string& name);
std::optional<UserInfo> lookup_user(uid_t uid);

struct ProcessOptions {
  std::vector<std::string> argv;  // argv[0] is an absolute path or found on PATH
  std::optional<UserInfo> run_as;  // switch to this user first (needs root)
  std::string cwd = "/";
  std::optional<std::vector<std::string>> env;  // KEY=VALUE; nullopt inherits ours
  std::optional<mode_t> umask;  // the child's; nullopt inherits ours
  std::chrono::milliseconds timeout{30000};
  std::size_t max_output = 64 * 1024;  // per stream; the rest is counted, not kept
  // Set from another thread to kill the child's process group now (the
  // daemon is stopping); checked at least every 100 ms.
  std::shared_ptr<const std::atomic<bool>> cancel;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  std::string out;
  std::string err;
  std::chrono::milliseconds duration{0};

  bool succeeded() const { return exit_code == 0 && !timed_out && !cancelled; }
  // "exited with 1", "killed by signal 9", "timed out after 30 s", and a tail of stderr.
  std::string describe() const;
};

// Errors only when the program could not be started (code "spawn").
// A time-out kills the child's whole process group.
Result<ProcessResult> run_process(const ProcessOptions& options);

}  // namespace secbox
