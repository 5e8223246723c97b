#pragma once
// Cameras: one file each, /etc/secbox/cameras/<id>.env, in the
// env-file syntax:
//   INPUT=/dev/video0 | rtsp://… | rtsps://… | lavfi:testsrc (testsrc2, smptebars)
//   MODE=remux | encode   (remux: an RTSP camera's H.264 copied, never decoded;
//                          the default for rtsp:// unless SIZE, FPS or BITRATE
//                          ask for a picture only encoding gives)
//   SIZE=640x480  FPS=15  BITRATE=800k  (encode only)
//   INPUT_FORMAT=mjpeg    (V4L2 only, optional)
// and the ffmpeg argument vector that turns one into HLS (short segments, a
// short rolling playlist, old segments deleted). An RTSP URL never reaches
// ffmpeg's command line (which every local user can read in /proc): it goes
// in an ffconcat file only the daemon's user reads (rtsp_input_file).
//
// Pure functions except load_cameras (reads a folder: call it off the loop).
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace secbox::media {

enum class InputKind { v4l2, rtsp, lavfi };
enum class Pipeline { encode, remux };

struct CameraConfig {
  std::string id;  // ^[a-z0-9][a-z0-9_-]{0,31}$
  InputKind kind = InputKind::lavfi;
  Pipeline pipeline = Pipeline::encode;
  std::string input;         // the device, the URL, or the lavfi source's name
  std::string input_format;  // V4L2 pixel format, optional
  int width = 640;
  int height = 480;
  int fps = 15;
  std::string bitrate = "800k";
};

bool is_camera_id(std::string_view id);

// One file's text. Errc::invalid; the message names the file
// and the key, never an RTSP URL (it may hold a password).
Result<CameraConfig> parse_camera(const std::string& id, std::string_view env_text);

struct CamerasLoaded {
  std::vector<CameraConfig> cameras;  // sorted by id
  std::vector<std::string> problems;  // invalid files, reported and skipped
};
CamerasLoaded load_cameras(const std::string& dir);

struct HlsSettings {
  std::string ffmpeg = "ffmpeg";
  std::chrono::seconds segment{1};
  int list_size = 6;
};

// ffmpeg … writing index.m3u8 and seg-<n>.ts (HLS), and fragmented MP4 to
// fd 3; progress lines (frame=…, fps=…) on stdout. Run it in the camera's
// folder: every name is relative to it. An RTSP camera is read from
// input.ffconcat there, which must hold rtsp_input_file(camera) (0600)
// before ffmpeg starts.
std::vector<std::string> ffmpeg_argv(const CameraConfig& camera, const HlsSettings& hls);
inline constexpr const char* kRtspInputFile = "input.ffconcat";
std::string rtsp_input_path(const std::string& out_dir);
// The ffconcat file naming the camera's URL, with its RTSP options: TCP
// transport, a 5 s socket time-out.
std::string rtsp_input_file(const CameraConfig& camera);

}  // namespace secbox::media
