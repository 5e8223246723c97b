#include "common/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>

namespace secbox {
namespace {

namespace asio = boost::asio;

constexpr int kPidfd = 3;  // waitid's P_PIDFD (linux/wait.h; not in glibc 2.36's idtype_t)

std::optional<UserInfo> from_passwd(const passwd* pw) {
  if (pw == nullptr) return std::nullopt;
  return UserInfo{pw->pw_name, pw->pw_uid, pw->pw_gid, pw->pw_dir ? pw->pw_dir : "/"};
}

void append_capped(std::string& to, const char* data, std::size_t n, std::size_t cap) {
  if (to.size() >= cap) return;
  to.append(data, std::min(n, cap - to.size()));
}

void close_all(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

// In the child, between fork and exec: async-signal-safe calls only. Every
// signal the daemon handles is back to its default, the mask (all blocked
// across the fork) is cleared just before exec, and nothing of the daemon's
// descriptors reaches the program (a listening socket held by an embedded
// postmaster would outlive a crashed daemon and keep the next run off its
// port): all above its own are closed but the exec status pipe, which
// closes itself at exec.
[[noreturn]] void child_exec(const ProcessOptions& o, char* const* argv, char* const* envp,
                             int out_w, int err_w, int fd3_w, int status_w) {
  ::setpgid(0, 0);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  const int first_free = fd3_w >= 0 ? 4 : 3;
  // The status pipe above every descriptor the child keeps, and the pipes'
  // write ends out of the way of 0..3 before they are put there.
  int status_fd = ::fcntl(status_w, F_DUPFD_CLOEXEC, first_free);
  if (status_fd < 0) ::_exit(127);
  int moved[3] = {::fcntl(out_w, F_DUPFD, first_free), ::fcntl(err_w, F_DUPFD, first_free),
                  fd3_w >= 0 ? ::fcntl(fd3_w, F_DUPFD, first_free) : -1};
  const int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0 && devnull != STDIN_FILENO) ::dup2(devnull, STDIN_FILENO);
  ::dup2(moved[0], STDOUT_FILENO);
  ::dup2(moved[1], STDERR_FILENO);
  if (moved[2] >= 0) ::dup2(moved[2], 3);
  if (status_fd > first_free)
    ::close_range(static_cast<unsigned>(first_free), static_cast<unsigned>(status_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(status_fd) + 1, ~0U, 0);
  int err = 0;
  if (o.run_as) {
    gid_t gid = o.run_as->gid;
    if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(o.run_as->uid) != 0)
      err = errno;
  }
  if (err == 0 && ::chdir(o.cwd.c_str()) != 0) err = errno;
  if (o.umask) ::umask(*o.umask);
  if (err == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (envp != nullptr) {
      ::execvpe(argv[0], argv, envp);
    } else {
      ::execvp(argv[0], argv);
    }
    err = errno;
  }
  ssize_t ignored = ::write(status_fd, &err, sizeof err);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

Cancellation::Cancellation() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Cancellation::~Cancellation() {
  if (fd_ >= 0) ::close(fd_);
}

void Cancellation::cancel() {
  if (cancelled_.exchange(true)) return;
  const std::uint64_t one = 1;
  ssize_t ignored = ::write(fd_, &one, sizeof one);
  (void)ignored;
}

bool Cancellation::wait_for(std::chrono::milliseconds limit) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!cancelled()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1'000'000)) + 1);
  }
  return cancelled();
}

std::optional<UserInfo> lookup_user(const std::string& name) {
  passwd pw{};
  passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result) != 0) return std::nullopt;
  return from_passwd(result);
}

std::optional<UserInfo> lookup_user(uid_t uid) {
  passwd pw{};
  passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) != 0) return std::nullopt;
  return from_passwd(result);
}

std::string ProcessResult::describe() const {
  std::string s;
  if (cancelled) {
    s = "stopped: the daemon is stopping";
  } else if (timed_out) {
    s = "timed out after " + std::to_string(duration.count()) + " ms";
  } else if (signal != 0) {
    s = "killed by signal " + std::to_string(signal);
  } else {
    s = "exited with " + std::to_string(exit_code);
  }
  std::string tail = err.size() > 400 ? err.substr(err.size() - 400) : err;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  if (!tail.empty()) s += ": " + tail;
  return s;
}

// fork(), not posix_spawn: posix_spawn can neither switch user (pg_ctl as the
// cluster's user, compose as the runtime's) nor set a umask, and one way for
// every child is the point. Signals are blocked in this thread across the
// fork, so that no handler of the daemon's runs in the child before it has
// reset them.
Result<SpawnedChild> spawn_child(const ProcessOptions& o) {
  if (o.argv.empty()) return Error{Errc::spawn, "no program given"};
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (o.env) {
    for (const auto& e : *o.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  std::array<std::array<int, 2>, 4> pipes{};  // out, err, fd 3, exec status
  for (auto& p : pipes) p = {-1, -1};
  auto close_pipes = [&] {
    for (auto& p : pipes) close_all({p[0], p[1]});
  };
  for (std::size_t i = 0; i < pipes.size(); ++i) {
    if (i == 2 && !o.pipe_fd3) continue;
    if (::pipe2(pipes[i].data(), O_CLOEXEC) != 0) {
      const int e = errno;
      close_pipes();
      return Error{Errc::spawn, std::string("pipe: ") + std::strerror(e)};
    }
  }
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::fork();
  if (pid == 0) {
    child_exec(o, argv.data(), o.env ? envp.data() : nullptr, pipes[0][1], pipes[1][1], pipes[2][1],
               pipes[3][1]);
  }
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    close_pipes();
    return Error{Errc::spawn, std::string("fork failed: ") + std::strerror(fork_errno)};
  }
  ::setpgid(pid, pid);  // also done in the child; whichever runs first wins
  close_all({pipes[0][1], pipes[1][1], pipes[2][1], pipes[3][1]});
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(pipes[3][0], &exec_errno,
               sizeof exec_errno);  // returns at exec (close-on-exec) or failure
  } while (n < 0 && errno == EINTR);
  ::close(pipes[3][0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    close_all({pipes[0][0], pipes[1][0], pipes[2][0]});
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return Error{Errc::spawn, "cannot run " + o.argv[0] + ": " + std::strerror(exec_errno)};
  }
  SpawnedChild c{pid, static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)), pipes[0][0], pipes[1][0],
                 pipes[2][0]};
  if (c.pidfd < 0) {
    const int e = errno;
    ::kill(-pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    close_all({c.out, c.err, c.fd3});
    return Error{Errc::spawn, std::string("pidfd_open: ") + std::strerror(e)};
  }
  ::fcntl(c.pidfd, F_SETFD, FD_CLOEXEC);
  return c;
}

namespace {

// One child on the loop: its two pipes read as they fill, its pidfd waited
// on, a timer for its time limit, and the cancellation's eventfd.
class Run final : public std::enable_shared_from_this<Run> {
 public:
  Run(asio::io_context& io, ProcessOptions options, std::function<void(Result<ProcessResult>)> done)
      : io_(io), options_(std::move(options)), done_(std::move(done)), out_(io), err_(io),
        exited_(io), stop_(io), timer_(io) {}

  void begin() {
    started_ = std::chrono::steady_clock::now();
    auto child = spawn_child(options_);
    if (!child) {
      return asio::post(io_, [self = shared_from_this(), e = child.error()] { self->complete(e); });
    }
    pid_ = child.value().pid;
    out_.assign(child.value().out);
    err_.assign(child.value().err);
    exited_.assign(child.value().pidfd);
    read(out_, out_buf_, result_.out, out_open_);
    read(err_, err_buf_, result_.err, err_open_);
    exited_.async_wait(asio::posix::stream_descriptor::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                         if (ec != asio::error::operation_aborted) self->reap();
                       });
    timer_.expires_after(options_.timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->kill(self->result_.timed_out);
    });
    if (options_.cancel) {
      const int fd = ::fcntl(options_.cancel->fd(), F_DUPFD_CLOEXEC, 3);
      if (fd >= 0) {
        stop_.assign(fd);
        stop_.async_wait(asio::posix::stream_descriptor::wait_read,
                         [self = shared_from_this()](const boost::system::error_code& ec) {
                           if (!ec) self->kill(self->result_.cancelled);
                         });
      }
      if (options_.cancel->cancelled()) kill(result_.cancelled);
    }
  }

 private:
  using Buffer = std::array<char, 16384>;

  void read(asio::posix::stream_descriptor& pipe, Buffer& buf, std::string& into, bool& open) {
    pipe.async_read_some(asio::buffer(buf),
                         [self = shared_from_this(), &pipe, &buf, &into, &open](
                             const boost::system::error_code& ec, std::size_t n) {
                           if (n > 0) append_capped(into, buf.data(), n, self->options_.max_output);
                           if (ec) {
                             open = false;
                             return self->maybe_complete();
                           }
                           self->read(pipe, buf, into, open);
                         });
  }

  // A time-out or a cancellation: the group is killed (unless its leader
  // is already reaped), and the run ends without waiting for its pipes.
  void kill(bool& why) {
    if (finished_ || pid_ < 0) return;
    why = true;
    if (!reaped_) ::kill(-pid_, SIGKILL);
    maybe_complete();
  }

  void reap() {
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(kPidfd), static_cast<id_t>(exited_.native_handle()), &info,
                 WEXITED) != 0) {
      // Not ours to reap after all (cannot happen while we hold its pidfd):
      // count it as gone.
      info.si_code = CLD_KILLED;
      info.si_status = SIGKILL;
    }
    reaped_ = true;
    if (info.si_code == CLD_EXITED) {
      result_.exit_code = info.si_status;
    } else {
      result_.signal = info.si_status;
    }
    maybe_complete();
  }

  // Done when the child is reaped and its pipes are at their end; after a
  // kill, the pipes are not waited for (a grandchild outside the group may
  // still hold them).
  void maybe_complete() {
    if (finished_ || !reaped_) return;
    if ((out_open_ || err_open_) && !result_.timed_out && !result_.cancelled) return;
    if (result_.timed_out || result_.cancelled)
      ::kill(-pid_, SIGKILL);  // whatever the child left in its group
    result_.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started_);
    complete(std::move(result_));
  }

  void complete(Result<ProcessResult> r) {
    if (finished_) return;
    finished_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    out_.close(ignored);
    err_.close(ignored);
    exited_.close(ignored);
    stop_.close(ignored);
    auto done = std::move(done_);
    if (done) done(std::move(r));
  }

  asio::io_context& io_;
  ProcessOptions options_;
  std::function<void(Result<ProcessResult>)> done_;
  asio::posix::stream_descriptor out_, err_, exited_, stop_;
  asio::steady_timer timer_;
  Buffer out_buf_{}, err_buf_{};
  bool out_open_ = true, err_open_ = true;
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point started_;
  ProcessResult result_;
};

}  // namespace

void start_process(asio::io_context& io, const ProcessOptions& options,
                   std::function<void(Result<ProcessResult>)> done) {
  std::make_shared<Run>(io, options, std::move(done))->begin();
}

Result<ProcessResult> run_process(const ProcessOptions& options) {
  asio::io_context io;
  Result<ProcessResult> out = Error{Errc::internal, "the process did not end"};
  start_process(io, options, [&out](Result<ProcessResult> r) { out = std::move(r); });
  io.run();
  return out;
}

}  // namespace secbox
