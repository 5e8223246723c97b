#include "media/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/log.hpp"
#include "common/process.hpp"
#include "media/fmp4.hpp"
#include "media/live_feed.hpp"

extern char** environ;

namespace secbox::media {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

std::string_view to_string(CameraState s) {
  switch (s) {
    case CameraState::starting:
      return "starting";
    case CameraState::live:
      return "live";
    case CameraState::stalled:
      return "stalled";
    case CameraState::failed:
      return "failed";
    case CameraState::unauthorized:
      return "unauthorized";
  }
  return "starting";
}

namespace {
constexpr std::size_t kTailBytes = 4096;

struct Child {
  pid_t pid = -1;
  int out = -1;
  int err = -1;
  int live = -1;  // fd 3 of the child: its fMP4 for live viewers
  int pidfd = -1;
};

// ffmpeg through the box's one way of starting a child (common/process):
// its own process group, stdin from /dev/null, stdout, stderr and fd 3 to
// pipes, nothing else of the daemon's, run in the camera's folder (its
// names are relative to it); only PATH and LANG from our environment.
Result<Child> spawn(const std::vector<std::string>& argv, const std::string& dir) {
  ProcessOptions o;
  o.argv = argv;
  o.cwd = dir;
  std::vector<std::string> env{"LANG=C.UTF-8"};
  if (const char* path = std::getenv("PATH")) env.push_back(std::string("PATH=") + path);
  o.env = std::move(env);
  o.pipe_fd3 = true;
  auto spawned = spawn_child(o);
  if (!spawned) return spawned.error();
  const auto& sc = spawned.value();
  Child c{sc.pid, sc.out, sc.err, sc.fd3, sc.pidfd};
  ::fcntl(c.live, F_SETPIPE_SZ, 1 << 20);  // a keyframe or two while the loop is busy
  ::fcntl(c.out, F_SETFL, O_NONBLOCK);
  ::fcntl(c.err, F_SETFL, O_NONBLOCK);
  ::fcntl(c.live, F_SETFL, O_NONBLOCK);
  return c;
}

// The start time of a process (/proc/PID/stat field 22, clock ticks since
// boot): with the pid, it names one process for as long as the box is up.
std::optional<unsigned long long> start_time_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return std::nullopt;
  }
  if (field.empty() || field.size() > 20 ||
      field.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoull(field);
}

}  // namespace

struct CameraSupervisor::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& l, CameraConfig c, SupervisorSettings s, std::string d)
      : loop(l), camera(std::move(c)), settings(std::move(s)), dir(std::move(d)), out(l), err(l),
        live_in(l), exited(l), segments(l), orphan(l), watchdog(l), restart_timer(l), kill_timer(l),
        orphan_timer(l), log("media") {}

  asio::io_context& loop;
  CameraConfig camera;
  SupervisorSettings settings;
  std::string dir;
  asio::posix::stream_descriptor out, err, live_in, exited, segments, orphan;
  Fmp4Splitter splitter;
  LiveFeed feed;
  std::vector<char> live_buf = std::vector<char>(64 * 1024);
  std::vector<Fmp4Piece> pieces;
  asio::steady_timer watchdog, restart_timer, kill_timer, orphan_timer;
  log::Logger log;

  CameraStatus st;
  pid_t pid = 0;
  bool running = false;  // a child exists (not yet reaped)
  bool stopping = false;
  bool stall_kill = false;       // the running child is being killed for a stall
  bool splitter_failed = false;  // this run's live video was refused
  SteadyClock::time_point spawned_at, last_segment, live_since, last_frame_at;
  unsigned long long frames = 0;  // ffmpeg's frame count in this run
  int streak = 0;                 // failures since the camera was last stable
  std::deque<SteadyClock::time_point> failures;
  char out_buf[2048], err_buf[2048], ev_buf[4096];
  std::string progress_line;
  std::function<void()> on_stopped;

  void start() {
    st.id = camera.id;
    end_earlier_run([self = shared_from_this()] {
      if (self->stopping) return self->finish_stop();
      self->watch_segments();
      self->spawn_child();
    });
  }

  // ffmpeg.pid in the camera's folder names the child of the run that wrote
  // it ("<pid> <start time>"). A daemon killed with SIGKILL leaves its ffmpeg
  // running (its own process group): the next run ends it before starting
  // one, so that two never write one HLS folder. A pid file naming another
  // process (the pid reused: the start time differs) is only removed.
  std::string pid_file() const { return dir + "/ffmpeg.pid"; }

  void end_earlier_run(std::function<void()> next) {
    std::ifstream in(pid_file());
    long long recorded_pid = 0;
    unsigned long long recorded_start = 0;
    if (!(in >> recorded_pid >> recorded_start) || recorded_pid <= 1 ||
        recorded_pid > (1LL << 22)) {
      ::unlink(pid_file().c_str());
      return next();
    }
    const auto earlier = static_cast<pid_t>(recorded_pid);
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, earlier, 0));
    // Checked after the pidfd is held: the process cannot be replaced now.
    if (fd < 0 || start_time_of(earlier) != recorded_start) {
      if (fd >= 0) ::close(fd);
      ::unlink(pid_file().c_str());
      return next();
    }
    log.warn("Ending the ffmpeg an earlier run left for this camera.",
             {{"camera", camera.id}, {"pid", static_cast<std::int64_t>(earlier)}});
    if (::kill(-earlier, SIGTERM) != 0 && ::kill(earlier, SIGTERM) != 0) {
      log.error("Cannot end an earlier run's ffmpeg; starting beside it.",
                {{"camera", camera.id}, {"reason", std::strerror(errno)}});
      ::close(fd);
      return next();
    }
    orphan.assign(fd);
    auto done = std::make_shared<std::function<void()>>(std::move(next));
    orphan_timer.expires_after(settings.stop_grace);
    orphan_timer.async_wait([self = shared_from_this(), earlier](boost::system::error_code ec) {
      if (ec) return;
      ::kill(-earlier, SIGKILL);
      ::kill(earlier, SIGKILL);
    });
    orphan.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this(), done](boost::system::error_code ec) {
                        if (ec == asio::error::operation_aborted) return;
                        self->orphan_timer.cancel();
                        boost::system::error_code ignored;
                        self->orphan.close(ignored);
                        ::unlink(self->pid_file().c_str());
                        (*done)();
                      });
  }

  // On the loop, so no fsync (write_file_atomically would sync twice per
  // spawn): a power cut ends ffmpeg too, and a torn file is read as absent.
  void write_pid_file() {
    auto started = start_time_of(pid);
    if (!started) return;
    const std::string text = std::to_string(pid) + " " + std::to_string(*started) + "\n";
    const int fd =
        ::open(pid_file().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    const bool written =
        fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0) ::close(fd);
    if (!written)
      log.warn("Cannot write the camera's pid file.",
               {{"camera", camera.id}, {"reason", std::strerror(errno)}});
  }

  void watch_segments() {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return;
    if (::inotify_add_watch(fd, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
      log.warn("Cannot watch the camera's HLS folder; stalls are seen by the watchdog only.",
               {{"camera", camera.id}, {"reason", std::strerror(errno)}});
      ::close(fd);
      return;
    }
    segments.assign(fd);
    read_segments();
  }

  void read_segments() {
    segments.async_read_some(
        asio::buffer(ev_buf),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (ec) return;
          bool segment = false;
          for (std::size_t i = 0; i + sizeof(inotify_event) <= n;) {
            auto* ev = reinterpret_cast<inotify_event*>(self->ev_buf + i);
            std::string name = ev->len ? std::string(ev->name) : std::string();
            if (name.size() > 3 && name.compare(name.size() - 3, 3, ".ts") == 0) segment = true;
            i += sizeof(inotify_event) + ev->len;
          }
          if (segment) self->on_segment();
          self->read_segments();
        });
  }

  void on_segment() {
    if (!running || stopping) return;
    last_segment = SteadyClock::now();
    st.last_segment_at = std::chrono::system_clock::now();
    if (st.state != CameraState::live) {
      st.state = CameraState::live;
      live_since = last_segment;
      log.info("Camera is live.", {{"camera", camera.id}, {"pid", static_cast<std::int64_t>(pid)}});
    } else if (last_segment - live_since >= settings.stable_after) {
      streak = 0;
    }
  }

  void spawn_child() {
    if (stopping) return;
    auto child = spawn(ffmpeg_argv(camera, settings.hls), dir);
    if (!child) {
      log.error("Cannot start ffmpeg for a camera.",
                {{"camera", camera.id}, {"reason", child.error().message}});
      st.stderr_tail = child.error().message;
      return on_failure("ffmpeg could not start");
    }
    pid = child.value().pid;
    st.pid = pid;
    running = true;
    write_pid_file();
    stall_kill = false;
    splitter_failed = false;
    spawned_at = SteadyClock::now();
    if (st.state != CameraState::failed && st.state != CameraState::unauthorized)
      st.state = CameraState::starting;
    st.fps.reset();
    st.stderr_tail.clear();  // this run's
    frames = 0;
    out.assign(child.value().out);
    err.assign(child.value().err);
    live_in.assign(child.value().live);
    exited.assign(child.value().pidfd);
    feed.restart();
    splitter.reset();
    read_out();
    read_err();
    read_live();
    exited.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this()](boost::system::error_code ec) {
                        if (ec != asio::error::operation_aborted) self->reap();
                      });
    arm_watchdog();
    log.info("Started ffmpeg for a camera.",
             {{"camera", camera.id}, {"pid", static_cast<std::int64_t>(pid)}});
  }

  void read_out() {
    out.async_read_some(asio::buffer(out_buf),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          if (ec) return;
                          self->progress_line.append(self->out_buf, n);
                          std::size_t nl;
                          while ((nl = self->progress_line.find('\n')) != std::string::npos) {
                            std::string line = self->progress_line.substr(0, nl);
                            self->progress_line.erase(0, nl + 1);
                            if (line.rfind("frame=", 0) == 0) {
                              const auto n = std::strtoull(line.c_str() + 6, nullptr, 10);
                              if (n > self->frames) {
                                self->frames = n;
                                self->last_frame_at = SteadyClock::now();
                              }
                            } else if (line.rfind("fps=", 0) == 0) {
                              try {
                                double f = std::stod(line.substr(4));
                                if (f > 0) self->st.fps = f;
                              } catch (...) {
                              }
                            }
                          }
                          if (self->progress_line.size() > 4096) self->progress_line.clear();
                          self->read_out();
                        });
  }

  void read_err() {
    err.async_read_some(asio::buffer(err_buf), [self = shared_from_this()](
                                                   boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      auto& tail = self->st.stderr_tail;
      tail.append(self->err_buf, n);
      if (tail.size() > kTailBytes) tail.erase(0, tail.size() - kTailBytes);
      tail = log::redact(tail);  // camera credentials: the status is shown, not only logged
      self->read_err();
    });
  }

  // fd 3: the fMP4 for live viewers. Always read, even once refused, so
  // that ffmpeg never blocks on it (HLS would stop too).
  void read_live() {
    live_in.async_read_some(
        asio::buffer(live_buf),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (ec) return;
          self->pieces.clear();
          const bool was_failed = self->splitter_failed;
          if (!self->splitter_failed) {
            if (auto fed =
                    self->splitter.feed(std::string_view(self->live_buf.data(), n), self->pieces);
                !fed) {
              self->splitter_failed = true;
              self->log.warn("The camera's live video was refused; HLS goes on.",
                             {{"camera", self->camera.id}, {"reason", fed.error().message}});
            }
          }
          for (auto& p : self->pieces) {
            // A camera that sends what browsers do not play (H.265): said once a
            // run, with what to do; HLS carries it as it is.
            if (p.kind == Fmp4Piece::Kind::init && !browsers_play(p.codec)) {
              self->log.warn(
                  "The camera sends video that browsers do not play: set the camera (or its "
                  "sub-stream) to H.264, "
                  "or MODE=encode in its file (decoding it costs far more CPU).",
                  {{"camera", self->camera.id}, {"codec", p.codec}});
            }
            self->feed.piece(std::move(p));
          }
          if (self->splitter_failed && !was_failed) self->feed.restart();
          self->read_live();
        });
  }

  // Every half second: no new frame for `no_frames` once one came, or no
  // new segment for 3 segment lengths (or none since the start, after the
  // grace; a remuxed camera's keyframes set its segments: 20 s) is a stall.
  void arm_watchdog() {
    watchdog.expires_after(std::chrono::milliseconds(500));
    watchdog.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopping || !self->running) return;
      const auto now = SteadyClock::now();
      if (self->frames > 0 && now - self->last_frame_at > self->settings.no_frames)
        return self->on_stall("no new frame");
      const bool had_segment = self->last_segment > self->spawned_at;
      const bool remux = self->camera.pipeline == Pipeline::remux;
      const auto limit = remux         ? self->settings.remux_segment_limit
                         : had_segment ? 3 * std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 self->settings.hls.segment)
                                       : self->settings.first_segment_grace;
      const auto since = had_segment ? self->last_segment : self->spawned_at;
      if (now - since > limit) return self->on_stall("no new segment");
      self->arm_watchdog();
    });
  }

  void on_stall(const char* what) {
    log.warn("Camera stalled; restarting ffmpeg.",
             {{"camera", camera.id}, {"what", what}, {"pid", static_cast<std::int64_t>(pid)}});
    st.state = CameraState::stalled;
    stall_kill = true;
    ::kill(-pid, SIGKILL);  // reap() follows through the pidfd
  }

  void reap() {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {  // not yet: wait again
      exited.async_wait(asio::posix::stream_descriptor::wait_read,
                        [self = shared_from_this()](boost::system::error_code ec) {
                          if (ec != asio::error::operation_aborted) self->reap();
                        });
      return;
    }
    ::kill(-pid, SIGKILL);  // anything the child left in its group
    ::unlink(pid_file().c_str());
    running = false;
    st.pid = 0;
    boost::system::error_code ignored;
    watchdog.cancel();
    kill_timer.cancel();
    out.close(ignored);
    err.close(ignored);
    live_in.close(ignored);
    exited.close(ignored);
    feed.restart();
    if (stopping) return finish_stop();
    std::string how = WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                                        : "killed by signal " + std::to_string(WTERMSIG(status));
    // RTSP's 401, as ffmpeg prints it ("Server returned 401 Unauthorized").
    if (!stall_kill && st.stderr_tail.find("401 Unauthorized") != std::string::npos)
      return on_unauthorized();
    log.warn(stall_kill ? "ffmpeg was killed after a stall." : "ffmpeg ended.",
             {{"camera", camera.id}, {"how", how}, {"stderr_tail", last_line(st.stderr_tail)}});
    on_failure(how);
  }

  void on_unauthorized() {
    if (st.state != CameraState::unauthorized) {
      log.error(
          "The camera refused the user name or password of its INPUT (RTSP 401); asking again "
          "every few minutes.",
          {{"camera", camera.id},
           {"retry_s", static_cast<std::int64_t>(settings.unauthorized_retry.count() / 1000)}});
    }
    st.state = CameraState::unauthorized;
    retry_after(settings.unauthorized_retry);
  }

  void retry_after(std::chrono::milliseconds wait) {
    restart_timer.expires_after(wait);
    restart_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopping) return;
      ++self->st.restarts;
      self->spawn_child();
    });
  }

  static std::string last_line(const std::string& text) {
    auto end = text.find_last_not_of("\r\n ");
    if (end == std::string::npos) return {};
    auto start = text.find_last_of('\n', end);
    return text.substr(start == std::string::npos ? 0 : start + 1,
                       end - (start == std::string::npos ? 0 : start + 1) + 1);
  }

  void on_failure(const std::string& why) {
    const auto now = SteadyClock::now();
    failures.push_back(now);
    while (!failures.empty() && now - failures.front() > std::chrono::hours(1))
      failures.pop_front();
    st.failures_last_hour = static_cast<int>(failures.size());
    // go2rtc's schedule: 1 s five times, then 5 s, 10 s, and 60 s on.
    const auto& b = settings.backoff_initial;
    std::chrono::milliseconds wait = streak < 5    ? b
                                     : streak == 5 ? 5 * b
                                     : streak == 6 ? 10 * b
                                                   : settings.backoff_max;
    wait = std::min(wait, settings.backoff_max);
    ++streak;
    if (static_cast<int>(failures.size()) >= settings.max_failures) {
      if (st.state != CameraState::failed) {
        log.error(
            "Camera failed: too many ffmpeg failures within an hour; still retrying at the "
            "back-off.",
            {{"camera", camera.id},
             {"failures", static_cast<std::int64_t>(failures.size())},
             {"last", why}});
      }
      st.state = CameraState::failed;  // a state to show; the back-off alone spaces the tries
    } else if (st.state != CameraState::stalled) {
      st.state = CameraState::starting;
    }
    retry_after(wait);
  }

  void stop(std::function<void()> done) {
    stopping = true;
    on_stopped = std::move(done);
    watchdog.cancel();
    restart_timer.cancel();
    boost::system::error_code ignored;
    segments.close(ignored);
    if (!running) return asio::post(loop, [self = shared_from_this()] { self->finish_stop(); });
    ::kill(-pid, SIGTERM);
    kill_timer.expires_after(settings.stop_grace);
    kill_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && self->running) ::kill(-self->pid, SIGKILL);
    });
  }

  void finish_stop() {
    if (on_stopped) {
      auto f = std::move(on_stopped);
      on_stopped = nullptr;
      f();
    }
  }

  // The loop is gone or never ran: kill and reap now.
  void force_down() {
    if (!running) return;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    running = false;
  }
};

CameraSupervisor::CameraSupervisor(asio::io_context& loop, CameraConfig camera,
                                   SupervisorSettings settings, std::string hls_dir)
    : impl_(std::make_shared<Impl>(loop, std::move(camera), std::move(settings),
                                   std::move(hls_dir))) {}

CameraSupervisor::~CameraSupervisor() {
  impl_->stopping = true;
  impl_->force_down();
  boost::system::error_code ignored;
  impl_->watchdog.cancel();
  impl_->restart_timer.cancel();
  impl_->kill_timer.cancel();
  impl_->orphan_timer.cancel();
  impl_->orphan.close(ignored);
  impl_->segments.close(ignored);
  impl_->out.close(ignored);
  impl_->err.close(ignored);
  impl_->live_in.close(ignored);
  impl_->exited.close(ignored);
}

void CameraSupervisor::start() { impl_->start(); }
void CameraSupervisor::stop(std::function<void()> on_stopped) {
  impl_->stop(std::move(on_stopped));
}
CameraStatus CameraSupervisor::status() const { return impl_->st; }
const CameraConfig& CameraSupervisor::camera() const { return impl_->camera; }
LiveFeed& CameraSupervisor::live() { return impl_->feed; }

}  // namespace secbox::media
