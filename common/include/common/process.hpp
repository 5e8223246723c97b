#pragma once
// The one way the box starts a program: an argument vector (never a shell),
// optionally as another user, in a process group of its own, with signals
// blocked across the fork and reset in the child, every descriptor beyond
// its own closed, and a pidfd for its end (spawn_child). On top of it:
//   - start_process(): on the loop, with capped output, a time limit and
//     a Cancellation; the pipes and the pidfd are watched by the loop, so no
//     thread is held while the child runs;
//   - run_process(): the same, blocking, on an io_context of its own, for
//     threads that do blocking work by design (the database thread's pg_ctl,
//     a compose operation's steps, the command line).
// A time-out or a cancellation kills the child's whole process group.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace boost::asio {
class io_context;
}

namespace secbox {

// A stop that any thread may signal and any run may wait on (an eventfd):
// the runs it was given kill their children at once, without polling.
class Cancellation {
 public:
  Cancellation();
  ~Cancellation();
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  void cancel();  // idempotent; any thread
  bool cancelled() const { return cancelled_.load(); }
  int fd() const { return fd_; }  // readable once cancelled
  // Blocks until cancelled or `limit` has passed; true if cancelled. For a
  // blocking thread's waits (a compose operation polling its services).
  bool wait_for(std::chrono::milliseconds limit) const;

 private:
  std::atomic<bool> cancelled_{false};
  int fd_ = -1;
};

struct UserInfo {
  std::string name;
  uid_t uid;
  gid_t gid;
  std::string home;
};

std::optional<UserInfo> lookup_user(const std::string& name);
std::optional<UserInfo> lookup_user(uid_t uid);

struct ProcessOptions {
  std::vector<std::string> argv;   // argv[0] is an absolute path or found on PATH
  std::optional<UserInfo> run_as;  // switch to this user first (needs root)
  std::string cwd = "/";
  std::optional<std::vector<std::string>> env;  // KEY=VALUE; nullopt inherits ours
  std::optional<mode_t> umask;                  // the child's; nullopt inherits ours
  std::chrono::milliseconds timeout{30000};
  std::size_t max_output = 64 * 1024;  // per stream; the rest is counted, not kept
  // Cancelled (the daemon is stopping): the child's process group is killed
  // now and the result says `cancelled`.
  std::shared_ptr<Cancellation> cancel;
  // spawn_child only: the child's fd 3 is a pipe too (ffmpeg's live output).
  bool pipe_fd3 = false;
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

// A started child: its pid (the leader of its own process group), a pidfd
// that becomes readable when it exits, and the read ends of its stdout,
// stderr (and fd 3), all close-on-exec. Its stdin is /dev/null. The caller
// owns the descriptors and reaps it (waitpid, or waitid on the pidfd).
struct SpawnedChild {
  pid_t pid = -1;
  int pidfd = -1;
  int out = -1;
  int err = -1;
  int fd3 = -1;
};

// Errors (Errc::spawn) when the program could not be started, with the
// reason (not found, not executable, the user switch refused).
Result<SpawnedChild> spawn_child(const ProcessOptions& options);

// Starts the program and calls done on the loop, once, when it has ended (or
// could not start: Errc::spawn). Loop thread. The run keeps itself alive;
// options.cancel stops it early.
void start_process(boost::asio::io_context& io, const ProcessOptions& options,
                   std::function<void(Result<ProcessResult>)> done);

// Blocking: start_process on an io_context of its own. Errors only when the
// program could not be started (Errc::spawn).
Result<ProcessResult> run_process(const ProcessOptions& options);

}  // namespace secbox
