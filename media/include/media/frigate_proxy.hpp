#pragma once
// The Frigate proxy of cloud-protocol §7.2 over the tunnel:
//  - frigate.snapshot: GET <FRIGATE_URL>/api/<camera>/latest.jpg?h=<height>,
//    answered with a binary frigate.snapshot.result frame (re = the request),
//    `not_found` for an unknown camera, `unavailable` when Frigate does not
//    answer within 5 s;
//  - frigate.stream.start: GET /api/<camera>?fps=&h= (MJPEG), answered
//    frigate.stream.started once Frigate answers 200 (else not_found /
//    unavailable), then one binary frigate.frame a JPEG (re = the start's id,
//    stream, seq counting every frame read). Under tunnel backpressure frames
//    are dropped, newest wins, at most 2 held a stream;
//  - frigate.stream.stop → ack; a stream also stops when its session
//    ends and 120 s after its last frigate.stream.keepalive.
// libcurl runs on worker threads (one a stream, bounded; two for snapshots);
// frames come back to the loop, where everything else happens.
//
// Loop thread only.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/component.hpp"

namespace boost::asio {
class io_context;
}
namespace secbox::protocol {
class Router;
}

namespace secbox::media {

struct FrigateSettings {
  std::string base_url = "http://127.0.0.1:5000";
  std::chrono::milliseconds answer_timeout{5000};  // connect + first answer
  std::chrono::milliseconds stall_timeout{5000};   // a stream sending nothing this long ends
  std::chrono::milliseconds keepalive{120000};
  std::size_t max_streams = 4;
  std::size_t max_frame = 8 * 1024 * 1024;
  std::size_t max_held = 2;
};

struct FrigateStats {
  std::size_t streams = 0;
  std::uint64_t frames_read = 0;
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_dropped = 0;
};

class FrigateProxy final : public Component {
 public:
  // Registers its types on the router; every stream stops when a session ends.
  FrigateProxy(boost::asio::io_context& loop, protocol::Router& router, FrigateSettings settings);
  ~FrigateProxy() override;
  FrigateProxy(const FrigateProxy&) = delete;
  FrigateProxy& operator=(const FrigateProxy&) = delete;

  std::string_view name() const override { return "frigate"; }
  void start() override {}
  void stop(std::function<void()> on_stopped) override;

  FrigateStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::media
