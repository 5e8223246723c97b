#include "common/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace secbox {
namespace {

std::optional<UserInfo> from_passwd(const passwd* pw) {
  if (pw == nullptr) return std::nullopt;
  return UserInfo{pw->pw_name, pw->pw_uid, pw->pw_gid, pw->pw_dir ? pw->pw_dir : "/"};
}

void append_capped(std::string& to, const char* data, std::size_t n, std::size_t cap) {
  if (to.size() >= cap) return;
  to.append(data, std::min(n, cap - to.size()));
}

// Only async-signal-safe calls between fork and exec.
[[noreturn]] void child_exec(const ProcessOptions& o, char* const* argv, char* const* envp,
                             int out_w, int err_w, int status_w) {
  ::setpgid(0, 0);
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
  ::dup2(out_w, STDOUT_FILENO);
  ::dup2(err_w, STDERR_FILENO);
  // Nothing else of the daemon's reaches the child (a listening socket held
  // by an embedded postmaster outlives a crashed daemon and keeps the next
  // run off its port): every descriptor above 2 is closed but the exec
  // status pipe, which closes itself at exec.
  int status_fd = ::fcntl(status_w, F_DUPFD_CLOEXEC, 3);
  if (status_fd < 0) status_fd = status_w;
  if (status_fd > 3) ::close_range(3, static_cast<unsigned>(status_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(status_fd) + 1, ~0U, 0);
  status_w = status_fd;
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);
  int err = 0;
  if (o.run_as) {
    gid_t gid = o.run_as->gid;
    if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(o.run_as->uid) != 0) {
      err = errno;
    }
  }
  if (err == 0 && ::chdir(o.cwd.c_str()) != 0) err = errno;
  if (o.umask) ::umask(*o.umask);
  if (err == 0) {
    if (envp != nullptr) {
      ::execvpe(argv[0], argv, envp);
    } else {
      ::execvp(argv[0], argv);
    }
    err = errno;
  }
  ssize_t ignored = ::write(status_w, &err, sizeof err);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

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

Result<ProcessResult> run_process(const ProcessOptions& o) {
  if (o.argv.empty()) return Error{Errc::spawn, "no program given"};
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (o.env) {
    for (const auto& e : *o.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }

  int out_pipe[2], err_pipe[2], status_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Error{Errc::spawn, std::strerror(errno)};
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return Error{Errc::spawn, std::strerror(errno)};
  }
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return Error{Errc::spawn, std::strerror(errno)};
  }

  const auto started = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], status_pipe[0],
                   status_pipe[1]}) {
      ::close(fd);
    }
    return Error{Errc::spawn, std::string("fork failed: ") + std::strerror(err)};
  }
  if (pid == 0) {
    child_exec(o, argv.data(), o.env ? envp.data() : nullptr, out_pipe[1], err_pipe[1],
               status_pipe[1]);
  }
  ::setpgid(pid, pid);  // also done in the child; whichever runs first wins
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(status_pipe[1]);

  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(status_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  ::close(status_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Error{Errc::spawn, "cannot run " + o.argv[0] + ": " + std::strerror(exec_errno)};
  }

  ProcessResult result;
  const auto deadline = started + o.timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[16384];
  while (open_fds > 0) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    if (o.cancel && o.cancel->load()) {
      result.cancelled = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
    if (o.cancel) wait_ms = std::min(wait_ms, 100);
    int r = ::poll(fds, 2, wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        append_capped(i == 0 ? result.out : result.err, buf, static_cast<std::size_t>(got),
                      o.max_output);
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  // The pipes closed (or the time ran out): the child exits now, or is killed.
  for (;;) {
    pid_t w = ::waitpid(pid, &status, result.timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (w == 0) {
      if (o.cancel && o.cancel->load() && !result.cancelled) {
        result.cancelled = true;
        ::kill(-pid, SIGKILL);
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        result.timed_out = true;
        ::kill(-pid, SIGKILL);
      } else {
        ::usleep(2000);
      }
    }
  }
  if (result.timed_out || result.cancelled) ::kill(-pid, SIGKILL);  // whatever the child left in its group
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace secbox
