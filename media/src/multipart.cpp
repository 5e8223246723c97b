#include "media/multipart.hpp"

#include <algorithm>
#include <cctype>

namespace secbox::media {
namespace {

bool is_jpeg(std::string_view b) {
  return b.size() >= 4 && static_cast<unsigned char>(b[0]) == 0xFF &&
         static_cast<unsigned char>(b[1]) == 0xD8 &&
         static_cast<unsigned char>(b[b.size() - 2]) == 0xFF &&
         static_cast<unsigned char>(b[b.size() - 1]) == 0xD9;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Content-Length of a part's header block; -1 when absent or not a number.
long long content_length(std::string_view headers) {
  const std::string h = lower(headers);
  for (std::size_t pos = 0; (pos = h.find("content-length", pos)) != std::string::npos; pos += 14) {
    if (pos != 0 && h[pos - 1] != '\n') continue;
    std::size_t i = pos + 14;
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
    if (i >= h.size() || h[i] != ':') continue;
    ++i;
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
    long long n = 0;
    std::size_t digits = 0;
    while (i < h.size() && std::isdigit(static_cast<unsigned char>(h[i])) && digits < 12) {
      n = n * 10 + (h[i] - '0');
      ++i;
      ++digits;
    }
    return digits ? n : -1;
  }
  return -1;
}

}  // namespace

MjpegParser::MjpegParser(std::string boundary, std::size_t max_frame)
    : delimiter_(boundary.empty() ? std::string() : "--" + boundary), max_frame_(max_frame) {}

std::string MjpegParser::boundary_of(std::string_view content_type) {
  const std::string lc = lower(content_type);
  auto pos = lc.find("boundary=");
  if (pos == std::string::npos) return {};
  std::string b(content_type.substr(pos + 9));
  if (!b.empty() && b.front() == '"') {
    auto end = b.find('"', 1);
    b = b.substr(1, end == std::string::npos ? std::string::npos : end - 1);
  } else {
    b = b.substr(0, b.find_first_of("; \t\r\n"));
  }
  if (b.rfind("--", 0) == 0) b = b.substr(2);  // some servers put the dashes in the parameter too
  return b.size() > 200 ? std::string() : b;
}

void MjpegParser::emit(std::string&& jpeg, const OnFrame& on_frame) {
  if (!is_jpeg(jpeg) || jpeg.size() > max_frame_) {
    ++bad_parts_;
    return;
  }
  ++frames_;
  on_frame(std::move(jpeg));
}

void MjpegParser::feed(std::string_view bytes, const OnFrame& on_frame) {
  buf_.append(bytes.data(), bytes.size());
  if (!delimiter_.empty()) {
    while (next_by_boundary(on_frame)) {
    }
    // The boundary never showed up in a whole frame's worth of bytes: the
    // server uses another one; fall back to the markers.
    if (buf_.size() > max_frame_ + delimiter_.size() && buf_.find(delimiter_) == std::string::npos)
      delimiter_.clear();
  }
  if (delimiter_.empty()) {
    while (next_by_markers(on_frame)) {
    }
  }
  if (buf_.size() >
      2 * max_frame_ + 4096) {  // nothing sensible in a long time: keep memory bounded
    ++bad_parts_;
    buf_.erase(0, buf_.size() - max_frame_);
  }
}

// One part: [garbage] --boundary [transport padding] CRLF headers CRLF CRLF body [CRLF] --boundary
bool MjpegParser::next_by_boundary(const OnFrame& on_frame) {
  auto start = buf_.find(delimiter_);
  if (start == std::string::npos) {
    // Keep only what could be the start of a delimiter.
    if (buf_.size() > delimiter_.size()) {
      if (buf_.size() > delimiter_.size() * 2 + 64) ++bad_parts_;
      buf_.erase(0, buf_.size() - delimiter_.size());
    }
    return false;
  }
  if (start > 0) {
    // Bytes before the boundary: the CRLF that ends the previous part, or garbage.
    if (buf_.find_first_not_of("\r\n", 0) < start) ++bad_parts_;
    buf_.erase(0, start);
  }
  auto line_end = buf_.find('\n', delimiter_.size());
  if (line_end == std::string::npos) return false;
  std::size_t headers_end = buf_.find("\r\n\r\n", line_end - 1);
  std::size_t body_start;
  if (headers_end != std::string::npos) {
    body_start = headers_end + 4;
  } else {
    headers_end = buf_.find("\n\n", line_end - 1);
    if (headers_end == std::string::npos) {
      if (buf_.size() > 8192) {  // no header block end: not a part
        ++bad_parts_;
        buf_.erase(0, delimiter_.size());
        return true;
      }
      return false;
    }
    body_start = headers_end + 2;
  }
  const std::string_view headers(buf_.data() + line_end + 1,
                                 headers_end > line_end ? headers_end - line_end - 1 : 0);
  const long long length = content_length(headers);
  if (length > static_cast<long long>(max_frame_)) {
    ++bad_parts_;
    buf_.erase(0, body_start);
    return true;
  }
  if (length >= 0) {
    if (buf_.size() < body_start + static_cast<std::size_t>(length)) return false;
    std::string body = buf_.substr(body_start, static_cast<std::size_t>(length));
    buf_.erase(0, body_start + static_cast<std::size_t>(length));
    emit(std::move(body), on_frame);
    return true;
  }
  auto next = buf_.find(delimiter_, body_start);
  if (next == std::string::npos) {
    if (buf_.size() - body_start > max_frame_) {
      ++bad_parts_;
      buf_.erase(0, body_start);
      return true;
    }
    // No length and no next boundary yet: a body that already ends with the
    // JPEG end marker goes out now rather than one frame interval later (and
    // the last frame before a stall goes out at all).
    std::size_t end = buf_.size();
    while (end > body_start && (buf_[end - 1] == '\n' || buf_[end - 1] == '\r')) --end;
    if (end - body_start >= 4 &&
        is_jpeg(std::string_view(buf_).substr(body_start, end - body_start))) {
      std::string body = buf_.substr(body_start, end - body_start);
      buf_.erase(0, end);
      emit(std::move(body), on_frame);
      return true;
    }
    return false;
  }
  std::size_t body_end = next;
  while (body_end > body_start && (buf_[body_end - 1] == '\n' || buf_[body_end - 1] == '\r'))
    --body_end;
  std::string body = buf_.substr(body_start, body_end - body_start);
  buf_.erase(0, next);
  emit(std::move(body), on_frame);
  return true;
}

bool MjpegParser::next_by_markers(const OnFrame& on_frame) {
  static const std::string kSoi("\xFF\xD8\xFF", 3);
  static const std::string kEoi("\xFF\xD9", 2);
  auto soi = buf_.find(kSoi);
  if (soi == std::string::npos) {
    if (buf_.size() > 2) buf_.erase(0, buf_.size() - 2);
    return false;
  }
  if (soi > 0) buf_.erase(0, soi);
  auto eoi = buf_.find(kEoi, 3);
  if (eoi == std::string::npos) return false;
  std::string jpeg = buf_.substr(0, eoi + 2);
  buf_.erase(0, eoi + 2);
  emit(std::move(jpeg), on_frame);
  return true;
}

}  // namespace secbox::media
