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
  EXPECT_EQ(parse_camera("usb", "INPUT=/dev/video0\nINPUT_FORMAT=mjpeg\n").value().kind, InputKind::v4l2);
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
  EXPECT_EQ(log::redact("wrong password Caseta-2026 for admin"), "wrong password [redacted] for admin");
  log::clear_secrets();
}

TEST(CameraFiles, FfmpegArgumentsMakeOneSecondSegmentsWithAKeyframeEach) {
  auto c = parse_camera("cam", "INPUT=lavfi:testsrc\nSIZE=640x480\nFPS=15\n").value();
  auto a = ffmpeg_argv(c, "/s/hls/cam", HlsSettings{});
  auto after = [&](const std::string& flag) {
    auto it = std::find(a.begin(), a.end(), flag);
    return it != a.end() && it + 1 != a.end() ? *(it + 1) : std::string();
  };
  EXPECT_EQ(after("-g"), "15");
  EXPECT_EQ(after("-hls_time"), "1");
  EXPECT_EQ(after("-pix_fmt"), "yuv420p");
  EXPECT_EQ(after("-i"), "testsrc=size=640x480:rate=15");
  EXPECT_EQ(a.back(), "/s/hls/cam/index.m3u8");
}

}  // namespace
}  // namespace secbox::media
