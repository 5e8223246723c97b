#pragma once
// The cameras of the box: reads /etc/secbox/cameras/*.env (off the loop) at
// start, prepares <state>/hls/<camera>/ and runs one CameraSupervisor each.
// Its figures feed health.report (§7.1), /metrics and /api/lan/streams.
//
// Loop thread only.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/blocking.hpp"
#include "common/component.hpp"
#include "media/supervisor.hpp"

namespace secbox::media {

struct MediaSettings {
  std::string cameras_dir;  // /etc/secbox/cameras
  std::string hls_root;     // <state>/hls
  SupervisorSettings supervisor;
};

class MediaService final : public Component {
 public:
  MediaService(boost::asio::io_context& loop, BlockingPool& workers, MediaSettings settings);
  ~MediaService() override;

  std::string_view name() const override { return "media"; }
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  std::vector<CameraStatus> cameras() const;
  // [{"camera","state","fps"?,"lastSegmentAt"?}] for health.report.
  nlohmann::json health() const;
  // [{"camera","state","ready","hlsUrl","width"?,"height"?,"fps"?,"lastSegmentAt"?,
  //   "live"?: {"url","type"}}] for the LAN; `live` once the camera's fMP4 has a
  //   keyframe and is H.264 (type: the MIME type with its codec, for MSE).
  nlohmann::json streams() const;
  // The camera's live feed; null when there is no such camera.
  LiveFeed* live(const std::string& camera);
  bool loaded() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::media
