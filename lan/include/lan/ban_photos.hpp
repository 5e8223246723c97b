#pragma once
// Ban photos, served to the guard app from the box's own origin: the app
// never loads an image from the address the cloud wrote (a compromised cloud
// would point guards' phones, or the box, anywhere).
//
// A photo is fetched once over HTTPS, the certificate verified, no redirect
// followed, at most max_bytes, and kept only when its bytes are a JPEG, PNG
// or WebP image (the type served is the one its bytes show). The box
// connects only to public addresses, except at the cloud's own origin
// (which the tunnel reaches already): a photo URL naming a camera, the
// router or the box itself on the LAN is refused before any connection.
// Photos are kept on disk (0600 in a 0700 folder, at most max_total bytes,
// the oldest dropped first), so guards see them while the internet is down,
// and the most recent in memory. A URL that failed is not fetched again
// before retry_after. Loop thread only; disk and network work run on the
// photos' own two threads.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/result.hpp"

namespace secbox::lan {

struct BanPhotoSettings {
  std::string dir;  // the cache on disk; made 0700
  // The cloud's origins ("https://host:port"; its API and its gateway), asked
  // on the loop thread at each fetch: their addresses may be private.
  std::function<std::vector<std::string>()> cloud_origins;
  std::string ca_file;  // extra trusted CA (the cloud's own), as the tunnel
  std::size_t max_bytes = 1 << 20;
  std::uint64_t max_total = 64ull << 20;
  std::size_t memory_bytes = 8 << 20;
  std::size_t max_pending = 64;  // URLs being fetched or read at once; beyond: unavailable
  std::chrono::seconds retry_after{300};
  std::chrono::seconds fetch_timeout{15};
};

struct Photo {
  std::string content_type;  // image/jpeg, image/png or image/webp
  std::shared_ptr<const std::string> bytes;
};

class BanPhotos {
 public:
  BanPhotos(boost::asio::io_context& io, BanPhotoSettings settings);
  ~BanPhotos();
  BanPhotos(const BanPhotos&) = delete;
  BanPhotos& operator=(const BanPhotos&) = delete;

  // The photo at `url`: from memory, disk, or fetched. Errors: Errc::invalid
  // (the URL or what it answered is refused, and why; retried only after
  // retry_after), Errc::unavailable (the fetch failed or too many are pending:
  // try later).
  void get(const std::string& url, std::function<void(Result<Photo>)> done);
  // Fetches, one after another, the photos not kept yet (the ban list
  // changed): guards then see them with the internet down.
  void prefetch(std::vector<std::string> urls);
  // Photos fetched and refused since start (metrics, tests).
  std::uint64_t fetched() const;
  std::uint64_t refused() const;
  // Stops fetching; pending callbacks are not called.
  void stop();

  // Pure checks, public for tests and the fuzzer. The URL: https with a host,
  // no user info, at most 2,048 characters; error says why.
  static Result<void> check_url(const std::string& url);
  // The image type of bytes from their first bytes; "" when none of the three.
  static std::string image_type(std::string_view bytes);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::lan
