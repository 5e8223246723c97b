#pragma once
// Fragmented MP4 as ffmpeg writes it for live video (`-f mp4 -movflags
// empty_moov+default_base_moof+frag_every_frame`), cut into what a browser's
// Media Source Extensions take: the init segment (ftyp + moov) and media
// fragments (moof + mdat), each whole, each fragment marked when it starts
// with a keyframe (where a new viewer can start). Bytes come in any pieces.
//
// ffmpeg is our child, but what it writes comes from a camera: every box is
// checked (sizes, nesting, at most 16 MiB a box), and a stream that breaks
// a rule is refused whole (reset() before the next). Pure; fuzzed.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace secbox::media {

struct Fmp4Piece {
  enum class Kind { init, fragment } kind = Kind::fragment;
  std::string bytes;
  bool key = false;   // a fragment whose first sample is a sync sample
  std::string codec;  // init: the RFC 6381 codec of its first track ("avc1.64001f"), or its
                      // sample entry's type when that is not H.264 ("hvc1")
};

class Fmp4Splitter {
 public:
  static constexpr std::size_t kMaxBox = 16u << 20;

  // Appends the pieces completed by `bytes` to `out`. An error leaves the
  // splitter refusing everything until reset().
  Result<void> feed(std::string_view bytes, std::vector<Fmp4Piece>& out);
  void reset();
  std::size_t buffered() const { return buffer_.size() - used_; }

 private:
  Result<void> take_box(std::string_view type, std::string_view box, std::vector<Fmp4Piece>& out);

  std::string buffer_;
  std::size_t used_ = 0;
  bool failed_ = false;
  std::string ftyp_;
  std::string moof_;
  bool moof_key_ = false;
  bool have_init_ = false;
  std::uint32_t trex_flags_ = 0x00010000;  // the movie's default sample flags (non-sync)
};

// H.264 ("avc1.…", "avc3.…"), which every browser's MSE plays.
bool browsers_play(const std::string& codec);

// The first track's codec from an init segment's moov box (the box whole,
// header included); empty when there is none.
std::string fmp4_codec(std::string_view moov);

}  // namespace secbox::media
