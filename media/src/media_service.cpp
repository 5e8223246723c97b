#include "media/media_service.hpp"

#include <sys/stat.h>

#include <filesystem>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "common/atomic_file.hpp"
#include "common/log.hpp"
#include "common/time.hpp"

namespace secbox::media {

struct MediaService::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& l, BlockingPool& w, MediaSettings s)
      : loop(l), workers(w), settings(std::move(s)) {}
  boost::asio::io_context& loop;
  BlockingPool& workers;
  MediaSettings settings;
  std::vector<std::unique_ptr<CameraSupervisor>> supervisors;
  bool loaded = false;
  bool stopping = false;
  log::Logger log{"media"};

  // Worker: the camera files, and a clean HLS folder for each camera.
  static CamerasLoaded prepare(const MediaSettings& s) {
    auto loaded = load_cameras(s.cameras_dir);
    namespace fs = std::filesystem;
    std::vector<CameraConfig> ready;
    for (auto& c : loaded.cameras) {
      const fs::path dir = fs::path(s.hls_root) / c.id;
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) {
        loaded.problems.push_back(c.id + ": cannot create " + dir.string() + ": " + ec.message());
        continue;
      }
      ::chmod(s.hls_root.c_str(), 0750);
      // Old segments go; the pid file stays: it names an earlier run's
      // ffmpeg that the supervisor must end first (supervisor.cpp).
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().filename() != "ffmpeg.pid") fs::remove(entry.path(), ec);
      }
      // An RTSP camera's URL (its password) reaches ffmpeg through a file
      // only the daemon's user reads, never its command line.
      if (c.kind == InputKind::rtsp) {
        auto written = write_file_atomically(rtsp_input_path(dir.string()), rtsp_input_file(c));
        if (!written) {
          loaded.problems.push_back(c.id + ": " + written.error().message);
          continue;
        }
      }
      ready.push_back(std::move(c));
    }
    loaded.cameras = std::move(ready);
    return loaded;
  }
};

MediaService::MediaService(boost::asio::io_context& loop, BlockingPool& workers,
                           MediaSettings settings)
    : impl_(std::make_shared<Impl>(loop, workers, std::move(settings))) {}
MediaService::~MediaService() = default;

void MediaService::start() {
  auto self = impl_;
  self->workers.run([s = self->settings] { return Impl::prepare(s); },
                    [self](CamerasLoaded loaded) {
                      if (self->stopping) return;
                      for (const auto& p : loaded.problems)
                        self->log.warn("Skipped a camera.", {{"reason", p}});
                      for (auto& c : loaded.cameras) {
                        const std::string dir = self->settings.hls_root + "/" + c.id;
                        auto sup = std::make_unique<CameraSupervisor>(
                            self->loop, std::move(c), self->settings.supervisor, dir);
                        sup->start();
                        self->supervisors.push_back(std::move(sup));
                      }
                      self->loaded = true;
                      self->log.info(
                          "Cameras read.",
                          {{"cameras", static_cast<std::int64_t>(self->supervisors.size())},
                           {"invalid", static_cast<std::int64_t>(loaded.problems.size())}});
                    });
}

void MediaService::stop(std::function<void()> on_stopped) {
  auto self = impl_;
  self->stopping = true;
  auto remaining = std::make_shared<std::size_t>(self->supervisors.size());
  if (*remaining == 0) return boost::asio::post(self->loop, std::move(on_stopped));
  auto done = std::make_shared<std::function<void()>>(std::move(on_stopped));
  for (auto& s : self->supervisors) {
    s->stop([remaining, done] {
      if (--*remaining == 0) (*done)();
    });
  }
}

std::vector<CameraStatus> MediaService::cameras() const {
  std::vector<CameraStatus> out;
  for (const auto& s : impl_->supervisors) out.push_back(s->status());
  return out;
}

bool MediaService::loaded() const { return impl_->loaded; }

nlohmann::json MediaService::health() const {
  auto out = nlohmann::json::array();
  for (const auto& c : cameras()) {
    nlohmann::json j{{"camera", c.id}, {"state", to_string(c.state)}};
    if (c.fps) j["fps"] = *c.fps;
    if (c.last_segment_at) j["lastSegmentAt"] = format_rfc3339(*c.last_segment_at);
    out.push_back(std::move(j));
  }
  return out;
}

LiveFeed* MediaService::live(const std::string& camera) {
  for (auto& s : impl_->supervisors) {
    if (s->camera().id == camera) return &s->live();
  }
  return nullptr;
}

nlohmann::json MediaService::streams() const {
  auto out = nlohmann::json::array();
  for (const auto& s : impl_->supervisors) {
    const auto c = s->status();
    const auto& cfg = s->camera();
    nlohmann::json j{{"camera", c.id},
                     {"state", to_string(c.state)},
                     {"ready", c.state == CameraState::live},
                     {"hlsUrl", "/hls/" + c.id + "/index.m3u8"}};
    if (cfg.pipeline == Pipeline::encode) {  // a remuxed stream is the camera's own size
      j["width"] = cfg.width;
      j["height"] = cfg.height;
    }
    if (c.fps) j["fps"] = *c.fps;
    if (c.last_segment_at) j["lastSegmentAt"] = format_rfc3339(*c.last_segment_at);
    if (auto type = s->live().mime_type(); !type.empty()) {
      j["live"] = {{"url", "/api/lan/cameras/live?camera=" + c.id}, {"type", type}};
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace secbox::media
