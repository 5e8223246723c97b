// Camera files: each checked naming the key (an RTSP password never in an
// error, and registered as a secret), and the ffmpeg arguments that make
// one-second HLS segments.
#include "media/camera.hpp"

#include <gtest/gtest.h>

#include "common/log.hpp"

namespace secbox::media {
namespace {

TEST(CameraFiles, AreCheckedNamingTheKey) {
  auto ok = parse_camera("gate-1", "INPUT=lavfi:testsrc\nSIZE=1280x720\nFPS=30\nBITRATE=2M\n");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok.value().width, 1280);
  EXPECT_EQ(ok.value().fps, 30);
  EXPECT_EQ(parse_camera("usb", "INPUT=/dev/video0\nINPUT_FORMAT=mjpeg\n").value().kind,
            InputKind::v4l2);
  struct Case {
    std::string id, text, names;
  };
  for (const auto& c : std::vector<Case>{
           {"Gate", "INPUT=lavfi:testsrc\n", "camera id"},
           {"../x", "INPUT=lavfi:testsrc\n", "camera id"},
           {"a", "", "INPUT is required"},
           {"a", "INPUT=/etc/passwd\n", "INPUT must be"},
           {"a", "INPUT=lavfi:movie=/etc/passwd\n", "lavfi: source"},
           {"a", "INPUT=lavfi:testsrc\nSIZE=big\n", "SIZE"},
           {"a", "INPUT=lavfi:testsrc\nSIZE=641x480\n", "SIZE must be even"},
           {"a", "INPUT=lavfi:testsrc\nFPS=0\n", "FPS"},
           {"a", "INPUT=lavfi:testsrc\nBITRATE=-1\n", "BITRATE"},
           {"a", "INPUT=lavfi:testsrc\nINPUT_FORMAT=mjpeg\n", "V4L2 devices only"},
           {"a", "INPUT=lavfi:testsrc\nCOLOR=red\n", "unknown key COLOR"},
           {"a", "INPUT=rtsp://admin:s3cret@10.0.0.9/ stream\n", "RTSP URL"},
           {"a", "INPUT=lavfi:testsrc\nMODE=remux\n", "MODE=remux needs an rtsp://"},
           {"a", "INPUT=rtsp://admin:s3cret@10.0.0.9/s\nMODE=remux\nFPS=10\n",
            "apply to MODE=encode"},
           {"a", "INPUT=rtsp://admin:s3cret@10.0.0.9/s\nMODE=copy\n", "MODE must be"},
       }) {
    auto r = parse_camera(c.id, c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.names), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("s3cret"), std::string::npos);
  }
}

// A camera's password never reaches a log line, even where it is printed
// without its URL.
TEST(CameraFiles, AnRtspPasswordIsRegisteredAsASecret) {
  ASSERT_TRUE(parse_camera("door", "INPUT=rtsp://admin:Caseta-2026@10.0.0.9:554/stream1\n"));
  EXPECT_EQ(log::redact("wrong password Caseta-2026 for admin"),
            "wrong password [redacted] for admin");
  log::clear_secrets();
}

TEST(CameraFiles, FfmpegArgumentsMakeOneSecondSegmentsWithAKeyframeEach) {
  auto c = parse_camera("cam", "INPUT=lavfi:testsrc\nSIZE=640x480\nFPS=15\n").value();
  auto a = ffmpeg_argv(c, HlsSettings{});
  auto after = [&](const std::string& flag) {
    auto it = std::find(a.begin(), a.end(), flag);
    return it != a.end() && it + 1 != a.end() ? *(it + 1) : std::string();
  };
  EXPECT_EQ(after("-g"), "15");
  EXPECT_EQ(after("-pix_fmt"), "yuv420p");
  EXPECT_EQ(after("-i"), "testsrc=size=640x480:rate=15");
  // One encode, two outputs: HLS in the camera's folder, fMP4 on fd 3.
  EXPECT_EQ(after("-f"), "lavfi");
  EXPECT_EQ(
      a.back(),
      "[f=hls:hls_time=1:hls_list_size=6:hls_flags=delete_segments+temp_file+program_date_time+"
      "independent_segments:hls_start_number_source=epoch:hls_segment_filename=seg-%d.ts]index.m3u8"
      "|[f=mp4:movflags=empty_moov+default_base_moof+frag_every_frame:flush_packets=1:onfail="
      "ignore]pipe:3");
  EXPECT_EQ(a[a.size() - 2], "tee");
  EXPECT_NE(std::find(a.begin(), a.end(), "+global_header"), a.end());
}

// An RTSP camera is remuxed by default (its H.264 copied: no decoding), with
// the arrival time as its timestamps; one whose file asks for a size, rate or
// bitrate, or MODE=encode, is encoded. Its URL is never on ffmpeg's command
// line: an ffconcat file names it, quoted whatever it holds.
TEST(CameraFiles, AnRtspCameraIsRemuxedFromAFileThatHoldsItsUrl) {
  const std::string url = "rtsp://admin:it's-s3cret@10.0.0.9:554/Streaming/Channels/101";
  auto c = parse_camera("gate", "INPUT=" + url + "\n").value();
  EXPECT_EQ(c.pipeline, Pipeline::remux);
  auto a = ffmpeg_argv(c, HlsSettings{});
  auto after = [&](const std::string& flag) {
    auto it = std::find(a.begin(), a.end(), flag);
    return it != a.end() && it + 1 != a.end() ? *(it + 1) : std::string();
  };
  EXPECT_EQ(after("-c:v"), "copy");
  EXPECT_EQ(after("-use_wallclock_as_timestamps"), "1");
  EXPECT_EQ(after("-f"), "concat");
  EXPECT_EQ(after("-i"), "input.ffconcat");
  EXPECT_EQ(std::find(a.begin(), a.end(), "-vf"), a.end()) << "nothing decoded";
  for (const auto& arg : a) EXPECT_EQ(arg.find("s3cret"), std::string::npos) << arg;
  EXPECT_EQ(rtsp_input_file(c),
            "ffconcat version 1.0\nfile "
            "'rtsp://admin:it'\\''s-s3cret@10.0.0.9:554/Streaming/Channels/101'\n"
            "option rtsp_transport tcp\noption timeout 5000000\n");

  EXPECT_EQ(parse_camera("gate", "INPUT=" + url + "\nFPS=10\n").value().pipeline, Pipeline::encode);
  auto encoded = parse_camera("gate", "INPUT=" + url + "\nMODE=encode\n").value();
  EXPECT_EQ(encoded.pipeline, Pipeline::encode);
  auto e = ffmpeg_argv(encoded, HlsSettings{});
  EXPECT_NE(std::find(e.begin(), e.end(), "libx264"), e.end());
  EXPECT_NE(std::find(e.begin(), e.end(), "input.ffconcat"), e.end());
  EXPECT_EQ(parse_camera("usb", "INPUT=/dev/video0\n").value().pipeline, Pipeline::encode);
  log::clear_secrets();
}

}  // namespace
}  // namespace secbox::media
