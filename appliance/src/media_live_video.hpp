#pragma once
// The cameras' live feeds (media::MediaService) as the LAN API's live video
// source: the seam between lan/ and media/, neither of which knows the other.
// Loop thread only.
#include "lan/api.hpp"
#include "media/media_service.hpp"

namespace secbox::appliance {

class MediaLiveVideo final : public lan::LiveVideoSource {
 public:
  explicit MediaLiveVideo(media::MediaService* const& media) : media_(media) {}

  std::string type(const std::string& camera) override {
    auto* feed = media_ ? media_->live(camera) : nullptr;
    return feed ? feed->mime_type() : std::string();
  }
  std::uint64_t watch(const std::string& camera, Viewer viewer) override {
    auto* feed = media_ ? media_->live(camera) : nullptr;
    if (!feed) return 0;
    return feed->add({std::move(viewer.write), std::move(viewer.waiting), std::move(viewer.end)});
  }
  void unwatch(const std::string& camera, std::uint64_t id) override {
    if (auto* feed = media_ ? media_->live(camera) : nullptr) feed->remove(id);
  }

 private:
  media::MediaService* const&
      media_;  // the App's pointer: null until the cameras are read, and after stop
};

}  // namespace secbox::appliance
