// The MJPEG parser: frames come out whole however the bytes are chunked, with
// or without Content-Length, with garbage between parts, and bad parts are
// skipped and counted.
#include <random>

#include <gtest/gtest.h>

#include "media/multipart.hpp"

namespace secbox::media {
namespace {

std::string jpeg(char fill, std::size_t n) {
  std::string j("\xFF\xD8\xFF\xE0", 4);
  j += std::string(n, fill);
  j += std::string("\xFF\xD9", 2);
  return j;
}

std::vector<std::string> parse(MjpegParser& p, const std::string& stream, std::size_t chunk) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < stream.size(); i += chunk) {
    p.feed(std::string_view(stream).substr(i, chunk),
           [&](std::string&& f) { out.push_back(std::move(f)); });
  }
  return out;
}

TEST(Mjpeg, FrigateStylePartsWithoutLengthInAnyChunking) {
  std::string stream;
  std::vector<std::string> frames;
  for (int i = 0; i < 5; ++i) {
    frames.push_back(jpeg(static_cast<char>('a' + i), 1000 + 37 * i));
    stream += "--frame\r\nContent-Type: image/jpeg\r\n\r\n" + frames.back() + "\r\n";
  }
  stream += "--frame\r\n";  // the next part starts: the last frame is whole
  for (std::size_t chunk : {1u, 2u, 7u, 64u, 1500u, 100000u}) {
    MjpegParser p("frame");
    EXPECT_EQ(parse(p, stream, chunk), frames) << "chunk " << chunk;
    EXPECT_EQ(p.bad_parts(), 0u);
  }
}

TEST(Mjpeg, AFrameWithoutLengthIsOutAsSoonAsItsEndMarkerArrives) {
  const auto a = jpeg('a', 300);
  MjpegParser p("frame");
  std::vector<std::string> out;
  p.feed("--frame\r\nContent-Type: image/jpeg\r\n\r\n" + a.substr(0, 100),
         [&](std::string&& f) { out.push_back(f); });
  EXPECT_TRUE(out.empty());
  p.feed(a.substr(100) + "\r\n", [&](std::string&& f) { out.push_back(f); });
  ASSERT_EQ(out.size(), 1u);  // no next boundary needed
  EXPECT_EQ(out[0], a);
  p.feed("--frame\r\n\r\n" + a + "\r\n", [&](std::string&& f) { out.push_back(f); });
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(p.bad_parts(), 0u);
}

TEST(Mjpeg, ContentLengthInAnyCaseLetsAFrameOutAtOnceAndGarbageIsSkipped) {
  const auto a = jpeg('a', 500), b = jpeg('b', 800);
  std::string stream =
      "junk before\r\n--myboundary\r\nContent-type: image/jpeg\r\nContent-length: " +
      std::to_string(a.size()) + "\r\n\r\n" + a + "\r\nGARBAGE\r\n" +
      "--myboundary\r\nCONTENT-LENGTH:" + std::to_string(b.size()) + "\r\n\r\n" + b;
  MjpegParser p("myboundary");
  auto frames = parse(p, stream, 13);
  ASSERT_EQ(frames.size(), 2u);  // b is out without a following boundary
  EXPECT_EQ(frames[0], a);
  EXPECT_EQ(frames[1], b);
  EXPECT_GE(p.bad_parts(), 1u);  // the garbage
}

TEST(Mjpeg, BadPartsAreSkippedAndCounted) {
  std::string stream =
      "--f\r\nContent-Type: text/plain\r\n\r\nnot a jpeg\r\n"
      "--f\r\nContent-Length: 99999999\r\n\r\n" +
      std::string(100, 'x') +
      "\r\n"
      "--f\r\n\r\n" +
      jpeg('z', 10) + "\r\n--f\r\n";
  MjpegParser p("f", 4096);
  auto frames = parse(p, stream, 5);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], jpeg('z', 10));
  EXPECT_GE(p.bad_parts(), 2u);
}

TEST(Mjpeg, WithoutAKnownBoundaryFramesAreCutAtTheMarkers) {
  const auto a = jpeg('a', 300), b = jpeg('b', 300);
  std::string stream = "--somethingelse\r\n\r\n" + a + "\r\n--somethingelse\r\n\r\n" + b + "\r\n";
  MjpegParser p;
  EXPECT_EQ(parse(p, stream, 3), (std::vector<std::string>{a, b}));
}

TEST(Mjpeg, MemoryStaysBoundedOnEndlessGarbage) {
  MjpegParser p("frame", 1024);
  std::mt19937 rng(7);
  std::string noise(64 * 1024, '\0');
  for (auto& c : noise) c = static_cast<char>(rng() % 200);  // no 0xFF: no JPEG marker
  for (int i = 0; i < 20; ++i)
    p.feed(noise, [](std::string&&) { FAIL() << "a frame out of noise"; });
  EXPECT_LE(p.buffered(), 2u * 1024 + 4096);
}

TEST(Mjpeg, BoundaryParameter) {
  EXPECT_EQ(MjpegParser::boundary_of("multipart/x-mixed-replace; boundary=frame"), "frame");
  EXPECT_EQ(MjpegParser::boundary_of("multipart/x-mixed-replace;Boundary=\"a b\""), "a b");
  EXPECT_EQ(MjpegParser::boundary_of("multipart/x-mixed-replace; boundary=--ffmpeg; x=1"),
            "ffmpeg");
  EXPECT_EQ(MjpegParser::boundary_of("image/jpeg"), "");
}

}  // namespace
}  // namespace secbox::media
