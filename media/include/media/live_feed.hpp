#pragma once
// One camera's live video for browsers (Media Source Extensions): the init
// segment and the fMP4 fragments ffmpeg writes (media/fmp4.hpp), handed to
// each viewer as they come. A new viewer gets the init segment and the
// fragments since the last keyframe at once, so it shows a picture without
// waiting for the next keyframe. A viewer that falls behind (more than
// `behind` bytes not yet sent: a phone on weak WiFi) is skipped until the
// next keyframe, so it never waits on a backlog it cannot drain and never
// takes memory from the others. When ffmpeg restarts, every viewer ends (its
// player needs the new init segment) and reconnects.
//
// Loop thread only.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "media/fmp4.hpp"

namespace secbox::media {

struct LiveViewer {
  std::function<bool(std::string)> write;  // false: the viewer is gone
  std::function<std::size_t()> waiting;    // bytes given and not yet sent
  std::function<void()> end;               // the feed restarted or stopped: close
};

class LiveFeed {
 public:
  static constexpr std::size_t kGopLimit = 4u << 20;  // the keyframe cache, at most
  explicit LiveFeed(std::size_t behind = 1u << 20) : behind_(behind) {}

  void piece(Fmp4Piece piece);
  // A new stream (ffmpeg restarted or stopped): viewers end; init and cache go.
  void restart();

  bool ready() const { return !init_.empty() && !gop_.empty(); }
  const std::string& codec() const { return codec_; }
  // `video/mp4; codecs="avc1.…"` once ready with H.264, which every
  // browser plays; empty otherwise (no picture yet, or H.265: HLS only).
  std::string mime_type() const;
  std::uint64_t add(LiveViewer viewer);
  void remove(std::uint64_t id);
  std::size_t viewers() const { return viewers_.size(); }
  std::uint64_t skipped() const { return skipped_; }  // fragments a slow viewer did not get

 private:
  struct Watching {
    LiveViewer viewer;
    bool started = false;    // has the init segment
    bool until_key = false;  // fell behind: nothing until the next keyframe
  };
  bool send(std::uint64_t id, Watching& w, const std::string& bytes);

  std::size_t behind_;
  std::string init_;
  std::string codec_;
  std::vector<std::string> gop_;  // fragments since the last key fragment
  std::size_t gop_bytes_ = 0;
  std::map<std::uint64_t, Watching> viewers_;
  std::uint64_t next_id_ = 1;
  std::uint64_t skipped_ = 0;
};

}  // namespace secbox::media
