// Fragmented MP4 for live viewers: ffmpeg's own output (frag_every_frame) cut
// into the init segment and whole fragments whatever the read sizes, with
// keyframes found; malformed streams refused; the live feed's viewers get
// the init segment and the last keyframe's fragments first, a slow one is
// skipped to the next keyframe, and a restart ends them all.
#include "media/fmp4.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "media/live_feed.hpp"
#include "temp_dir.hpp"

namespace secbox::media {
namespace {

using secbox::testing::TempDir;

// 2 s of testsrc at 15 fps, a keyframe every 15 frames, as the box's ffmpeg
// writes it for live viewers.
std::string ffmpeg_fmp4(const TempDir& dir) {
  const std::string out = dir.file("live.mp4");
  const std::string cmd =
      "ffmpeg -v error -y -f lavfi -i testsrc=size=160x120:rate=15 -t 2 -c:v libx264 -preset "
      "ultrafast "
      "-g 15 -keyint_min 15 -sc_threshold 0 -pix_fmt yuv420p -f mp4 "
      "-movflags empty_moov+default_base_moof+frag_every_frame '" +
      out + "' </dev/null";
  if (std::system(cmd.c_str()) != 0) return {};
  std::ifstream in(out, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Fmp4, FfmpegsLiveOutputIsCutIntoTheInitAndWholeFragmentsWhateverTheReads) {
  TempDir dir;
  const std::string bytes = ffmpeg_fmp4(dir);
  ASSERT_FALSE(bytes.empty());
  std::mt19937 random(7);
  for (int round = 0; round < 5; ++round) {
    Fmp4Splitter splitter;
    std::vector<Fmp4Piece> pieces;
    for (std::size_t at = 0; at < bytes.size();) {
      const std::size_t n =
          std::min<std::size_t>(bytes.size() - at, 1 + random() % (round == 0 ? 1 : 5000));
      ASSERT_TRUE(splitter.feed(std::string_view(bytes).substr(at, n), pieces));
      at += n;
    }
    ASSERT_GE(pieces.size(), 31u);
    EXPECT_EQ(pieces[0].kind, Fmp4Piece::Kind::init);
    EXPECT_EQ(pieces[0].codec.rfind("avc1.", 0), 0u) << pieces[0].codec;
    EXPECT_EQ(pieces[0].codec.size(), 11u);
    EXPECT_EQ(pieces[0].bytes.substr(4, 4), "ftyp");
    std::size_t fragments = 0, keys = 0, total = pieces[0].bytes.size();
    for (std::size_t i = 1; i < pieces.size(); ++i) {
      EXPECT_EQ(pieces[i].kind, Fmp4Piece::Kind::fragment);
      EXPECT_EQ(pieces[i].bytes.substr(4, 4), "moof");
      ++fragments;
      keys += pieces[i].key;
      total += pieces[i].bytes.size();
      if ((i - 1) % 15 == 0) {
        EXPECT_TRUE(pieces[i].key) << "frame " << i - 1;
      }
    }
    EXPECT_EQ(fragments, 30u) << "a fragment a frame";
    EXPECT_EQ(keys, 2u);
    EXPECT_LE(total, bytes.size());
    EXPECT_EQ(splitter.buffered(), 0u);
  }
}

TEST(Fmp4, MalformedStreamsAreRefusedUntilReset) {
  std::vector<Fmp4Piece> pieces;
  Fmp4Splitter s;
  const std::string huge(
      "\x7f\xff\xff\xff"
      "mdat",
      8);
  EXPECT_FALSE(s.feed(huge, pieces)) << "a 2 GiB box";
  EXPECT_FALSE(s.feed(std::string("\0\0\0\x08"
                                  "free",
                                  8),
                      pieces))
      << "refused until reset";
  s.reset();
  EXPECT_TRUE(s.feed(std::string("\0\0\0\x08"
                                 "free",
                                 8),
                     pieces));
  EXPECT_FALSE(s.feed(std::string("\0\0\0\x10"
                                  "moof"
                                  "\0\0\0\x08"
                                  "mfhd",
                                  16),
                      pieces))
      << "a fragment before the init";
  s.reset();
  EXPECT_FALSE(s.feed(std::string("\0\0\0\x04"
                                  "ftyp",
                                  8),
                      pieces))
      << "a box smaller than its header";
  s.reset();
  EXPECT_FALSE(s.feed(std::string("\0\0\0\x00"
                                  "ftyp",
                                  8),
                      pieces))
      << "a box to the end of a live stream";
  EXPECT_TRUE(pieces.empty());
}

struct FakeViewer {
  std::vector<std::string> got;
  std::size_t waiting = 0;
  bool ended = false;
  bool gone = false;
  LiveViewer viewer() {
    return {[this](std::string b) {
              if (gone) return false;
              got.push_back(std::move(b));
              return true;
            },
            [this] { return waiting; }, [this] { ended = true; }};
  }
};

Fmp4Piece piece(Fmp4Piece::Kind kind, std::string bytes, bool key = false) {
  Fmp4Piece p;
  p.kind = kind;
  p.bytes = std::move(bytes);
  p.key = key;
  p.codec = kind == Fmp4Piece::Kind::init ? "avc1.42c00c" : "";
  return p;
}

TEST(LiveFeed, ANewViewerStartsAtTheLastKeyframeAndASlowOneSkipsToTheNext) {
  LiveFeed feed(1000);
  FakeViewer early;
  ASSERT_NE(feed.add(early.viewer()), 0u);
  feed.piece(piece(Fmp4Piece::Kind::init, "INIT"));
  feed.piece(
      piece(Fmp4Piece::Kind::fragment, "p0"));  // before any keyframe: no one can start there
  EXPECT_TRUE(early.got.empty());
  feed.piece(piece(Fmp4Piece::Kind::fragment, "K1", true));
  feed.piece(piece(Fmp4Piece::Kind::fragment, "d1"));
  EXPECT_EQ(early.got, (std::vector<std::string>{"INIT", "K1", "d1"}));
  ASSERT_TRUE(feed.ready());

  FakeViewer late;
  feed.add(late.viewer());
  EXPECT_EQ(late.got, (std::vector<std::string>{"INIT", "K1", "d1"})) << "a picture at once";

  early.waiting = 1500;  // behind
  feed.piece(piece(Fmp4Piece::Kind::fragment, "d2"));
  feed.piece(piece(Fmp4Piece::Kind::fragment, "K2", true));  // still behind: skipped
  early.waiting = 100;
  feed.piece(piece(Fmp4Piece::Kind::fragment, "d3"));  // caught up, but not at a keyframe
  feed.piece(piece(Fmp4Piece::Kind::fragment, "K3", true));
  EXPECT_EQ(early.got, (std::vector<std::string>{"INIT", "K1", "d1", "K3"}));
  EXPECT_EQ(feed.skipped(), 3u);
  EXPECT_EQ(late.got.back(), "K3");

  late.gone = true;
  feed.piece(piece(Fmp4Piece::Kind::fragment, "d4"));
  EXPECT_EQ(feed.viewers(), 1u) << "a viewer that is gone is dropped";

  feed.restart();
  EXPECT_TRUE(early.ended);
  EXPECT_EQ(feed.viewers(), 0u);
  EXPECT_FALSE(feed.ready());
}

}  // namespace
}  // namespace secbox::media
