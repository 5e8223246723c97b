// The live video's fMP4 splitter against any bytes, cut into chunks of sizes
// the input chooses: it never crashes, every piece it lets out is whole (an
// init segment starting with ftyp then moov, a fragment with moof then
// mdat), and what it holds stays within one box. The pieces feed a live
// feed with a viewer, as the supervisor does.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "media/fmp4.hpp"
#include "media/live_feed.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  using secbox::media::Fmp4Piece;
  secbox::media::Fmp4Splitter splitter;
  secbox::media::LiveFeed feed(4096);
  std::size_t sent = 0;
  feed.add({[&](std::string b) {
              sent += b.size();
              return true;
            },
            [&] { return sent % 8192; }, [] {}});
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t step = 1 + data[0];
  std::vector<Fmp4Piece> pieces;
  while (!rest.empty()) {
    auto chunk = rest.substr(0, step);
    rest.remove_prefix(chunk.size());
    pieces.clear();
    if (!splitter.feed(chunk, pieces)) splitter.reset();
    for (auto& p : pieces) {
      if (p.bytes.size() < 16) std::abort();
      const std::string_view b(p.bytes);
      if (p.kind == Fmp4Piece::Kind::init &&
          (b.substr(4, 4) != "ftyp" || b.find("moov") == std::string_view::npos)) {
        std::abort();
      }
      if (p.kind == Fmp4Piece::Kind::fragment &&
          (b.substr(4, 4) != "moof" || b.find("mdat") == std::string_view::npos)) {
        std::abort();
      }
      feed.piece(std::move(p));
    }
    if (splitter.buffered() > secbox::media::Fmp4Splitter::kMaxBox) std::abort();
    step = step * 3 % 251 + 1;
  }
  return 0;
}
