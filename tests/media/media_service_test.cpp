// The media service: the camera folder read off the loop, bad files skipped,
// a stale playlist not served as ready, each camera's stream reported.
#include "media/media_service.hpp"

#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "child_processes.hpp"
#include "run_loop.hpp"
#include "temp_dir.hpp"

namespace secbox::media {
namespace {

using namespace std::chrono_literals;
using secbox::testing::children;
using secbox::testing::run_until;
using secbox::testing::TempDir;

TEST(MediaService, ReadsTheCameraFolderAndReportsStreams) {
  TempDir dir;
  boost::asio::io_context io;
  BlockingPool workers(io, 1);
  ::mkdir(dir.file("cameras").c_str(), 0700);
  dir.write("cameras/gate.env", "INPUT=lavfi:testsrc\nSIZE=160x120\nFPS=10\n");
  dir.write("cameras/bad.env", "INPUT=/etc/passwd\n");
  ::mkdir(dir.file("hls").c_str(), 0700);
  ::mkdir(dir.file("hls/gate").c_str(), 0700);
  dir.write("hls/gate/index.m3u8", "stale");
  MediaSettings ms{dir.file("cameras"), dir.file("hls"), {}};
  MediaService media(io, workers, ms);
  media.start();
  ASSERT_TRUE(run_until(
      io, [&] { return media.loaded(); }, 10s));
  EXPECT_EQ(TempDir::read(dir.file("hls/gate/index.m3u8")), "") << "a stale playlist was left";
  ASSERT_EQ(media.streams().size(), 1u);
  EXPECT_EQ(media.streams()[0]["hlsUrl"], "/hls/gate/index.m3u8");
  ASSERT_TRUE(run_until(
      io, [&] { return media.streams()[0]["ready"] == true; }, 10s));
  EXPECT_EQ(media.health()[0]["state"], "live");
  EXPECT_TRUE(media.health()[0].contains("lastSegmentAt"));
  // The encoded picture as fMP4 too, for live viewers, from the same encode.
  ASSERT_TRUE(run_until(
      io, [&] { return media.live("gate")->ready(); }, 10s));
  EXPECT_EQ(
      media.streams()[0]["live"]["type"].get<std::string>().rfind("video/mp4; codecs=\"avc1.", 0),
      0u);
  EXPECT_EQ(media.live("nope"), nullptr);
  bool stopped = false;
  media.stop([&] { stopped = true; });
  ASSERT_TRUE(run_until(
      io, [&] { return stopped; }, 10s));
  EXPECT_EQ(children().first, 0);
}

}  // namespace
}  // namespace secbox::media
