#include "media/camera.hpp"

#include <algorithm>
#include <filesystem>
#include <regex>

#include "common/atomic_file.hpp"
#include "common/log.hpp"
#include "envfile/env_file.hpp"

namespace secbox::media {

bool is_camera_id(std::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_digit(id[0])) return false;
  return std::all_of(id.begin(), id.end(),
                     [&](char c) { return lower_digit(c) || c == '_' || c == '-'; });
}

Result<CameraConfig> parse_camera(const std::string& id, std::string_view text) {
  const std::string file = "cameras/" + (is_camera_id(id) ? id : std::string("?")) + ".env";
  auto bad = [&](const std::string& what) { return Error{Errc::invalid, file + ": " + what}; };
  if (!is_camera_id(id)) return bad("the camera id must match ^[a-z0-9][a-z0-9_-]{0,31}$");
  auto env = envfile::parse(text, file);
  if (!env) return Error{Errc::invalid, env.error().message};
  for (const auto& e : env.value().entries()) {
    static const char* const kKnown[] = {"INPUT", "MODE", "SIZE", "FPS", "BITRATE", "INPUT_FORMAT"};
    if (std::find(std::begin(kKnown), std::end(kKnown), e.key) == std::end(kKnown)) {
      return bad("unknown key " + e.key + " (INPUT, MODE, SIZE, FPS, BITRATE, INPUT_FORMAT)");
    }
  }
  CameraConfig c;
  c.id = id;
  auto input = env.value().get("INPUT").value_or("");
  static const std::regex kDevice(R"(^/dev/video[0-9]{1,3}$)");
  static const std::regex kByPath(R"(^/dev/v4l/by-(id|path)/[A-Za-z0-9:._-]{1,200}$)");
  if (input.empty()) return bad("INPUT is required (/dev/videoN, rtsp://…, or lavfi:testsrc)");
  if (std::regex_match(input, kDevice) || std::regex_match(input, kByPath)) {
    c.kind = InputKind::v4l2;
  } else if (input.rfind("rtsp://", 0) == 0 || input.rfind("rtsps://", 0) == 0) {
    if (input.size() > 1024 ||
        std::any_of(input.begin(), input.end(), [](unsigned char ch) { return ch <= ' '; })) {
      return bad("INPUT is not a valid RTSP URL");
    }
    c.kind = InputKind::rtsp;
    // The URL's user and password never reach a log line, whatever prints
    // them (ffmpeg's errors do); the URL-shaped ones are scrubbed anyway.
    const auto scheme_end = input.find("://") + 3;
    const auto at = input.find('@', scheme_end);
    if (at != std::string::npos && input.find('/', scheme_end) > at) {
      const std::string userinfo = input.substr(scheme_end, at - scheme_end);
      log::add_secret(userinfo);
      if (auto colon = userinfo.find(':'); colon != std::string::npos)
        log::add_secret(userinfo.substr(colon + 1));
    }
  } else if (input.rfind("lavfi:", 0) == 0) {
    const std::string source = input.substr(6);
    if (source != "testsrc" && source != "testsrc2" && source != "smptebars") {
      return bad("INPUT lavfi: source must be testsrc, testsrc2 or smptebars");
    }
    c.kind = InputKind::lavfi;
    input = source;
  } else {
    return bad(
        "INPUT must be a V4L2 device (/dev/videoN), an rtsp:// or rtsps:// URL, or lavfi:testsrc");
  }
  c.input = input;
  if (auto size = env.value().get("SIZE"); size && !size->empty()) {
    static const std::regex kSize(R"(^([0-9]{2,4})x([0-9]{2,4})$)");
    std::smatch m;
    if (!std::regex_match(*size, m, kSize)) return bad("SIZE must be WIDTHxHEIGHT, e.g. 640x480");
    c.width = std::stoi(m[1]);
    c.height = std::stoi(m[2]);
    if (c.width < 16 || c.height < 16 || c.width > 3840 || c.height > 2160 || c.width % 2 ||
        c.height % 2) {
      return bad("SIZE must be even, from 16x16 to 3840x2160");
    }
  }
  if (auto fps = env.value().get("FPS"); fps && !fps->empty()) {
    if (fps->size() > 2 || !std::all_of(fps->begin(), fps->end(), ::isdigit) ||
        std::stoi(*fps) < 1 || std::stoi(*fps) > 60) {
      return bad("FPS must be a whole number from 1 to 60");
    }
    c.fps = std::stoi(*fps);
  }
  if (auto rate = env.value().get("BITRATE"); rate && !rate->empty()) {
    static const std::regex kRate(R"(^[1-9][0-9]{0,5}[kM]?$)");
    if (!std::regex_match(*rate, kRate)) return bad("BITRATE must be like 800k or 2M");
    c.bitrate = *rate;
  }
  if (auto fmt = env.value().get("INPUT_FORMAT"); fmt && !fmt->empty()) {
    static const std::regex kFmt(R"(^[a-z0-9_]{1,16}$)");
    if (!std::regex_match(*fmt, kFmt))
      return bad("INPUT_FORMAT must be a pixel format name, e.g. mjpeg or yuyv422");
    if (c.kind != InputKind::v4l2) return bad("INPUT_FORMAT applies to V4L2 devices only");
    c.input_format = *fmt;
  }
  // Remux (copy the camera's H.264) or encode. An RTSP camera is remuxed
  // unless its file asks for a size, rate or bitrate of its own.
  const auto given = [&](const char* key) { return !env.value().get(key).value_or("").empty(); };
  const bool picture = given("SIZE") || given("FPS") || given("BITRATE");
  const std::string mode = env.value().get("MODE").value_or("");
  if (mode.empty()) {
    c.pipeline = c.kind == InputKind::rtsp && !picture ? Pipeline::remux : Pipeline::encode;
  } else if (mode == "encode") {
    c.pipeline = Pipeline::encode;
  } else if (mode == "remux") {
    if (c.kind != InputKind::rtsp)
      return bad("MODE=remux needs an rtsp:// or rtsps:// INPUT (a webcam's frames are encoded)");
    if (picture)
      return bad(
          "SIZE, FPS and BITRATE apply to MODE=encode (a remuxed stream is the camera's own)");
    c.pipeline = Pipeline::remux;
  } else {
    return bad("MODE must be remux or encode");
  }
  return c;
}

CamerasLoaded load_cameras(const std::string& dir) {
  CamerasLoaded out;
  auto folder = read_folder(dir, ".env", 64 * 1024);
  out.problems = std::move(folder.problems);
  for (const auto& f : folder.files) {
    auto camera = parse_camera(f.stem, f.text);
    if (!camera) {
      out.problems.push_back(camera.error().message);
      continue;
    }
    out.cameras.push_back(std::move(camera).value());
  }
  return out;
}

std::string rtsp_input_path(const std::string& out_dir) { return out_dir + "/" + kRtspInputFile; }

std::string rtsp_input_file(const CameraConfig& c) {
  // ffconcat quoting: inside '…' nothing is special but the quote itself.
  std::string quoted = "'";
  for (char ch : c.input) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  quoted += "'";
  return "ffconcat version 1.0\nfile " + quoted +
         "\noption rtsp_transport tcp\noption timeout 5000000\n";
}

std::vector<std::string> ffmpeg_argv(const CameraConfig& c, const HlsSettings& hls) {
  const std::string size = std::to_string(c.width) + "x" + std::to_string(c.height);
  const std::string fps = std::to_string(c.fps);
  // An RTSP source's first packets carry no timestamps, and a burst at the
  // start repeats some: ffmpeg's warnings about them would bury the one
  // error that matters (a 401) in the kept stderr.
  const bool rtsp = c.kind == InputKind::rtsp;
  std::vector<std::string> a{
      hls.ffmpeg, "-hide_banner", "-nostdin", "-loglevel",     rtsp ? "error" : "warning",
      "-nostats", "-progress",    "pipe:1",   "-stats_period", "1"};
  switch (c.kind) {
    case InputKind::v4l2:
      a.insert(a.end(), {"-f", "v4l2"});
      if (!c.input_format.empty()) a.insert(a.end(), {"-input_format", c.input_format});
      a.insert(a.end(), {"-framerate", fps, "-video_size", size, "-i", c.input});
      break;
    case InputKind::rtsp:
      // The URL is in the ffconcat file, not here. Cameras send no usable
      // timestamps until their first RTCP report: the arrival time is used,
      // as Frigate does for every RTSP input.
      a.insert(a.end(),
               {"-use_wallclock_as_timestamps", "1", "-f", "concat", "-safe", "0",
                "-protocol_whitelist", "file,rtsp,rtsps,tcp,tls,udp,rtp", "-i", kRtspInputFile});
      break;
    case InputKind::lavfi:
      // -re: a test source paced like a camera, not as fast as the CPU goes.
      a.insert(a.end(), {"-re", "-f", "lavfi", "-i", c.input + "=size=" + size + ":rate=" + fps});
      break;
  }
  a.insert(a.end(), {"-an", "-sn", "-dn"});
  if (c.pipeline == Pipeline::remux) {
    // The camera's own H.264, copied: segments start at its keyframes.
    a.insert(a.end(), {"-map", "0:v:0", "-c:v", "copy"});
  } else {
    const std::string gop = std::to_string(c.fps * hls.segment.count());
    a.insert(a.end(),
             {"-map", "0:v:0", "-vf",
              "scale=" + std::to_string(c.width) + ":" + std::to_string(c.height) + ",fps=" + fps,
              "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt",
              "yuv420p", "-b:v", c.bitrate, "-maxrate", c.bitrate, "-bufsize", c.bitrate,
              // A keyframe starts every segment.
              "-g", gop, "-keyint_min", gop, "-sc_threshold", "0"});
  }
  // Two outputs of one demux (and one encode): HLS, and fragmented MP4 on
  // fd 3 for live viewers (a fragment a frame: Media Source Extensions in
  // the app). The tee muxer needs the encoder's global header for MP4, and
  // ignores the MP4 output failing (HLS goes on). Names are relative: ffmpeg
  // runs in the camera's folder, so no path needs the tee muxer's escaping.
  if (c.pipeline == Pipeline::encode) a.insert(a.end(), {"-flags", "+global_header"});
  a.insert(a.end(),
           {"-f", "tee",
            "[f=hls:hls_time=" + std::to_string(hls.segment.count()) +
                ":hls_list_size=" + std::to_string(hls.list_size) +
                ":hls_flags=delete_segments+temp_file+program_date_time+independent_segments"
                // Segment numbers keep growing across restarts, so players never see one reused.
                ":hls_start_number_source=epoch:hls_segment_filename=seg-%d.ts]index.m3u8"
                "|[f=mp4:movflags=empty_moov+default_base_moof+frag_every_frame:flush_packets=1:"
                "onfail=ignore]pipe:3"});
  return a;
}

}  // namespace secbox::media
