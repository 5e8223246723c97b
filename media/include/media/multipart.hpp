#pragma once
// Cuts JPEG frames out of an MJPEG stream (multipart/x-mixed-replace, as
// Frigate's /api/<camera> and ffmpeg's mpjpeg send it), fed in chunks of any
// size. Parts are found by their boundary line; a part's Content-Length
// (header names in any case) cuts its body exactly and lets a frame out
// without waiting for the next boundary; without one, the body ends at the
// next boundary, or as soon as what has arrived ends with the JPEG end marker
// (FF D9), so that a frame is not held back a frame interval. Bytes between parts, parts that are
// not a JPEG (no SOI/EOI markers) and parts larger than the limit are skipped and counted. With no
// boundary known, or none found, frames are cut at the JPEG markers.
//
// Value type, no I/O; any thread (one at a time).
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace secbox::media {

class MjpegParser {
 public:
  using OnFrame = std::function<void(std::string&& jpeg)>;

  // `boundary` as in the Content-Type parameter (without the leading --);
  // empty: unknown.
  explicit MjpegParser(std::string boundary = {}, std::size_t max_frame = 8 * 1024 * 1024);

  void feed(std::string_view bytes, const OnFrame& on_frame);

  std::size_t frames() const { return frames_; }
  std::size_t bad_parts() const { return bad_parts_; }
  std::size_t buffered() const { return buf_.size(); }

  // The boundary parameter of a Content-Type value, unquoted; "" when absent.
  static std::string boundary_of(std::string_view content_type);

 private:
  bool next_by_boundary(const OnFrame& on_frame);
  bool next_by_markers(const OnFrame& on_frame);
  void emit(std::string&& jpeg, const OnFrame& on_frame);

  std::string delimiter_;  // "--" + boundary, or empty
  std::size_t max_frame_;
  std::string buf_;
  std::size_t frames_ = 0;
  std::size_t bad_parts_ = 0;
};

}  // namespace secbox::media
