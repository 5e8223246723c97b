// The MJPEG parser against any bytes, cut into chunks of sizes the input
// chooses: it never crashes, every frame it lets out is a whole JPEG within
// the limit, and what it holds stays bounded.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "media/multipart.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_frame = 512 + data[0] * 16;
  const bool with_boundary = data[1] & 1;
  secbox::media::MjpegParser parser(with_boundary ? "frame" : "", max_frame);
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::size_t step = 1 + (data[1] >> 1);
  while (!rest.empty()) {
    auto chunk = rest.substr(0, step);
    rest.remove_prefix(chunk.size());
    parser.feed(chunk, [&](std::string&& jpeg) {
      if (jpeg.size() < 4 || jpeg.size() > max_frame ||
          static_cast<unsigned char>(jpeg[0]) != 0xFF ||
          static_cast<unsigned char>(jpeg[1]) != 0xD8 ||
          static_cast<unsigned char>(jpeg[jpeg.size() - 1]) != 0xD9) {
        std::abort();
      }
    });
    if (parser.buffered() > 2 * max_frame + 4096 + step) std::abort();
    step = step * 3 % 97 + 1;
  }
  return 0;
}
