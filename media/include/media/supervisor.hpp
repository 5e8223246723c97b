#pragma once
// One ffmpeg child per camera, supervised on the loop: stdout (progress) and
// stderr are read asynchronously (stderr kept as a short tail for diagnosis),
// the child's exit is seen through a pidfd, new segments through inotify on
// the camera's HLS folder. The child is restarted with back-off (go2rtc's:
// 1 s five times, then 5 s, 10 s, and 60 s from then on) when it exits, when
// its frame count stops moving (a camera that freezes with its connection
// open: ffmpeg's exit status says nothing then), or when no segment appears
// for 3 segment lengths (20 s for a remuxed camera, whose keyframes set its
// segments); after `max_failures` within an hour the camera is `failed` (and
// still retried at the back-off, so that one back from an outage is seen). A
// camera that refuses the user name or password (RTSP 401) is
// `unauthorized` and asked again only every 5 minutes (cameras lock an
// account that keeps failing). The child runs in its own process group,
// which is killed on stop; every child is reaped.
//
// Loop thread only.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "media/camera.hpp"
#include "media/live_feed.hpp"

namespace boost::asio {
class io_context;
}

namespace secbox::media {

enum class CameraState { starting, live, stalled, failed, unauthorized };
std::string_view to_string(CameraState state);

struct SupervisorSettings {
  HlsSettings hls;
  std::chrono::milliseconds first_segment_grace{
      10000};  // from spawn to the first segment (encoded)
  std::chrono::milliseconds remux_segment_limit{20000};  // remuxed: the first, and between two
  std::chrono::milliseconds no_frames{5000};  // after the first frame, none for this long: stalled
  std::chrono::milliseconds backoff_initial{1000};  // five times; then 5x, 10x, then backoff_max
  std::chrono::milliseconds backoff_max{60000};
  std::chrono::milliseconds stable_after{60000};  // live this long: the back-off starts over
  int max_failures = 5;  // within an hour: failed (a state; the back-off goes on)
  std::chrono::milliseconds unauthorized_retry{300000};
  std::chrono::milliseconds stop_grace{2000};  // SIGTERM, then SIGKILL
};

struct CameraStatus {
  std::string id;
  CameraState state = CameraState::starting;
  std::optional<double> fps;
  std::optional<std::chrono::system_clock::time_point> last_segment_at;
  int restarts = 0;  // since the box started
  int failures_last_hour = 0;
  std::string stderr_tail;  // the last lines ffmpeg wrote
  pid_t pid = 0;            // 0 while no child runs
};

class CameraSupervisor {
 public:
  CameraSupervisor(boost::asio::io_context& loop, CameraConfig camera, SupervisorSettings settings,
                   std::string hls_dir);
  ~CameraSupervisor();
  CameraSupervisor(const CameraSupervisor&) = delete;
  CameraSupervisor& operator=(const CameraSupervisor&) = delete;

  void start();
  void stop(std::function<void()> on_stopped);
  CameraStatus status() const;
  const CameraConfig& camera() const;
  // The camera's live fMP4 for browsers (media/live_feed.hpp).
  LiveFeed& live();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::media
