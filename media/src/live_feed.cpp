#include "media/live_feed.hpp"

namespace secbox::media {

bool LiveFeed::send(std::uint64_t id, Watching& w, const std::string& bytes) {
  if (w.viewer.write(bytes)) return true;
  viewers_.erase(id);
  return false;
}

void LiveFeed::piece(Fmp4Piece p) {
  if (p.kind == Fmp4Piece::Kind::init) {
    if (!init_.empty()) restart();  // a second init: a new stream
    init_ = std::move(p.bytes);
    codec_ = std::move(p.codec);
    return;
  }
  if (init_.empty()) return;
  if (p.key) {
    gop_.clear();
    gop_bytes_ = 0;
  }
  if (!gop_.empty() || p.key) {
    gop_bytes_ += p.bytes.size();
    if (gop_bytes_ >
        kGopLimit) {  // a keyframe interval too long to keep: new viewers wait for the next
      gop_.clear();
      gop_bytes_ = 0;
    } else {
      gop_.push_back(p.bytes);
    }
  }
  auto ids = std::vector<std::uint64_t>();
  for (const auto& [id, w] : viewers_) ids.push_back(id);
  for (auto id : ids) {
    auto it = viewers_.find(id);
    if (it == viewers_.end()) continue;
    Watching& w = it->second;
    if (!w.started) {  // joined before the first keyframe: starts at this one
      if (!p.key) continue;
      if (!send(id, w, init_)) continue;
      w.started = true;
    }
    if (p.key && w.viewer.waiting() <= behind_ / 2) w.until_key = false;
    if (!w.until_key && w.viewer.waiting() > behind_) w.until_key = true;
    if (w.until_key) {
      ++skipped_;
      continue;
    }
    send(id, w, p.bytes);
  }
}

void LiveFeed::restart() {
  auto ending = std::move(viewers_);
  viewers_.clear();
  init_.clear();
  codec_.clear();
  gop_.clear();
  gop_bytes_ = 0;
  for (auto& [id, w] : ending) {
    if (w.viewer.end) w.viewer.end();
  }
}

std::uint64_t LiveFeed::add(LiveViewer viewer) {
  const auto id = next_id_++;
  Watching w{std::move(viewer)};
  if (ready()) {
    if (!w.viewer.write(init_)) return 0;
    for (const auto& f : gop_) {
      if (!w.viewer.write(f)) return 0;
    }
    w.started = true;
  }
  viewers_.emplace(id, std::move(w));
  return id;
}

void LiveFeed::remove(std::uint64_t id) { viewers_.erase(id); }

std::string LiveFeed::mime_type() const {
  if (!ready() || !browsers_play(codec_)) return {};
  return "video/mp4; codecs=\"" + codec_ + "\"";
}

}  // namespace secbox::media
