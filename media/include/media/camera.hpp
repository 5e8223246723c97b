#pragma once
// Cameras: one file each, /etc/secbox/cameras/<id>.env, in the
// env-file syntax:
//   INPUT=/dev/video0 | rtsp://… | rtsps://… | lavfi:testsrc (testsrc2, smptebars)
//   SIZE=640x480  FPS=15  BITRATE=800k  INPUT_FORMAT=mjpeg (V4L2 only, optional)
// and the ffmpeg argument vector that turns one into HLS (1 s segments, a
// short rolling playlist, old segments deleted).
//
// Pure functions except load_cameras (reads a folder: call it off the loop).
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace secbox::media {

enum class InputKind { v4l2, rtsp, lavfi };

struct CameraConfig {
  std::string id;            // ^[a-z0-9][a-z0-9_-]{0,31}$
  InputKind kind = InputKind::lavfi;
  std::string input;         // the device, the URL, or the lavfi source's name
  std::string input_format;  // V4L2 pixel format, optional
  int width = 640;
  int height = 480;
  int fps = 15;
  std::string bitrate = "800k";
};

bool is_camera_id(std::string_view id);

// One file's text. Error code "invalid_camera"; the message names the file
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

// ffmpeg … -f hls <out_dir>/index.m3u8; progress lines (fps=…) on stdout.
std::vector<std::string> ffmpeg_argv(const CameraConfig& camera, const std::string& out_dir,
                                     const HlsSettings& hls);

}  // namespace secbox::media
