#include "lan/ban_photos.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <list>
#include <unordered_map>
#include <unordered_set>

#include "common/atomic_file.hpp"
#include "common/blocking.hpp"
#include "common/hex.hpp"
#include "common/http_client.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/url.hpp"

namespace secbox::lan {
namespace {

constexpr std::size_t kMaxUrl = 2048;
constexpr std::size_t kMaxFailures = 4096;
constexpr std::size_t kMaxQueued = 20000;
constexpr std::chrono::seconds kRetryUnavailable{30};

std::string cache_name(const std::string& url) { return sha256_hex(url); }

// The cache's files beyond max_total, oldest first, removed. Only names the
// cache writes (64 hex digits) are counted or touched.
void prune(const std::string& dir, std::uint64_t max_total) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return;
  struct Entry {
    std::string name;
    std::uint64_t size;
    std::int64_t mtime;  // ns
  };
  std::vector<Entry> entries;
  std::uint64_t total = 0;
  while (auto* e = ::readdir(d.get())) {
    const std::string name = e->d_name;
    if (name.size() != 64 || name.find_first_not_of("0123456789abcdef") != std::string::npos)
      continue;
    struct stat st {};
    if (::fstatat(::dirfd(d.get()), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    entries.push_back(
        {name, static_cast<std::uint64_t>(st.st_size),
         static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
    total += static_cast<std::uint64_t>(st.st_size);
  }
  if (total <= max_total) return;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.mtime < b.mtime; });
  for (const auto& e : entries) {
    if (total <= max_total) break;
    if (::unlinkat(::dirfd(d.get()), e.name.c_str(), 0) == 0) total -= e.size;
  }
}

// Blocking: the photo from the disk cache, or fetched and kept there.
Result<Photo> load(const BanPhotoSettings& s, const std::string& url, bool cloud,
                   const std::atomic<bool>& stopping) {
  ::mkdir(s.dir.c_str(), 0700);
  const std::string path = s.dir + "/" + cache_name(url);
  if (auto kept = read_file(path, s.max_bytes); kept) {
    const auto type = BanPhotos::image_type(kept.value());
    if (!type.empty()) {
      ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // recently used: pruned last
      return Photo{type, std::make_shared<const std::string>(std::move(kept).value())};
    }
    ::unlink(path.c_str());  // not an image: not ours to serve
  }
  std::string refused_address;
  HttpRequest req;
  req.url = url;
  req.ca_file = s.ca_file;
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(s.fetch_timeout);
  req.max_response = s.max_bytes;
  req.accept = "image/jpeg, image/png, image/webp";
  req.protocols = "https";
  req.allow_address = [cloud, &refused_address](const std::string& address) {
    if (cloud || is_public_address(address)) return true;
    refused_address = address;
    return false;
  };
  req.cancel = [&stopping] { return stopping.load(); };
  auto res = get(req);
  if (!refused_address.empty()) {
    return Error{Errc::invalid,
                 "its host is at " + refused_address +
                     ", not a public address: photos come from the internet or the cloud"};
  }
  if (!res) {
    if (res.error().message.rfind("the answer was larger", 0) == 0) {
      return Error{Errc::invalid, "it is larger than " + std::to_string(s.max_bytes) + " bytes"};
    }
    return Error{Errc::unavailable, "it could not be fetched (" + res.error().message + ")"};
  }
  const long status = res.value().status;
  if (status >= 300 && status < 400)
    return Error{Errc::invalid, "it answered a redirect, which is not followed"};
  if (status >= 500 || status == 429)
    return Error{Errc::unavailable, "it answered " + std::to_string(status)};
  if (status != 200) return Error{Errc::invalid, "it answered " + std::to_string(status)};
  auto type = BanPhotos::image_type(res.value().body);
  if (type.empty()) return Error{Errc::invalid, "it is not a JPEG, PNG or WebP image"};
  auto bytes = std::make_shared<const std::string>(std::move(res.value().body));
  if (auto w = write_file_atomically(path, *bytes, {0600, std::nullopt}); w)
    prune(s.dir, s.max_total);
  return Photo{type, std::move(bytes)};
}

struct Failure {
  std::chrono::steady_clock::time_point until;
  Error error;
};

}  // namespace

struct BanPhotos::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, BanPhotoSettings s) : settings(std::move(s)), pool(io, 2) {}

  BanPhotoSettings settings;
  BlockingPool pool;
  log::Logger log{"lan.photos"};
  bool stopped = false;
  std::shared_ptr<std::atomic<bool>> stopping = std::make_shared<std::atomic<bool>>(false);
  std::list<std::pair<std::string, Photo>> recent;  // most recent first
  std::unordered_map<std::string, decltype(recent)::iterator> by_url;
  std::size_t memory_used = 0;
  std::unordered_map<std::string, std::vector<std::function<void(Result<Photo>)>>> pending;
  std::unordered_map<std::string, Failure> failures;
  std::deque<std::string> queue;  // prefetch
  std::unordered_set<std::string> queued;
  bool prefetching = false;
  std::uint64_t fetched = 0, refused = 0;

  void remember(const std::string& url, const Photo& photo) {
    const std::size_t size = photo.bytes->size();
    if (size > settings.memory_bytes / 4) return;
    recent.emplace_front(url, photo);
    by_url[url] = recent.begin();
    memory_used += size;
    while (memory_used > settings.memory_bytes && !recent.empty()) {
      memory_used -= recent.back().second.bytes->size();
      by_url.erase(recent.back().first);
      recent.pop_back();
    }
  }

  void fail(const std::string& url, const Error& error) {
    const auto now = std::chrono::steady_clock::now();
    if (failures.size() >= kMaxFailures) {
      for (auto it = failures.begin(); it != failures.end();)
        it = it->second.until <= now ? failures.erase(it) : std::next(it);
      if (failures.size() >= kMaxFailures) failures.erase(failures.begin());
    }
    const auto wait = error.code == Errc::invalid
                          ? settings.retry_after
                          : std::min(settings.retry_after, kRetryUnavailable);
    failures[url] = Failure{now + wait, error};
    if (error.code == Errc::invalid) ++refused;
    // Once per URL and retry time; the host only (a URL may carry a signature).
    log.warn("A ban photo was not taken: " + error.message, {{"host", url_host(url)}});
  }

  void loaded(const std::string& url, Result<Photo> result) {
    if (stopped) return;
    auto node = pending.extract(url);
    if (result) {
      ++fetched;
      remember(url, result.value());
    } else {
      fail(url, result.error());
    }
    if (!node.empty()) {
      for (auto& done : node.mapped()) done(result);
    }
  }

  void get(const std::string& url, std::function<void(Result<Photo>)> done) {
    if (stopped) return;
    if (auto ok = check_url(url); !ok) return done(ok.error());
    if (auto f = failures.find(url); f != failures.end()) {
      if (f->second.until > std::chrono::steady_clock::now()) return done(f->second.error);
      failures.erase(f);
    }
    if (auto it = by_url.find(url); it != by_url.end()) {
      recent.splice(recent.begin(), recent, it->second);
      return done(it->second->second);
    }
    if (auto p = pending.find(url); p != pending.end()) return p->second.push_back(std::move(done));
    if (pending.size() >= settings.max_pending) {
      return done(Error{Errc::unavailable, "too many photos are being fetched; try again shortly"});
    }
    pending[url].push_back(std::move(done));
    bool cloud = false;
    if (settings.cloud_origins) {
      const auto origins = settings.cloud_origins();
      cloud = std::find(origins.begin(), origins.end(), url_origin(url)) != origins.end();
    }
    pool.run(
        [s = settings, url, cloud, stopping = stopping] { return load(s, url, cloud, *stopping); },
        [weak = weak_from_this(), url](Result<Photo> r) {
          if (auto self = weak.lock()) self->loaded(url, std::move(r));
        });
  }

  void prefetch_next() {
    while (!stopped && !queue.empty()) {
      std::string url = std::move(queue.front());
      queue.pop_front();
      queued.erase(url);
      if (by_url.count(url) || pending.count(url) || failures.count(url)) continue;
      prefetching = true;
      get(url, [weak = weak_from_this()](const Result<Photo>&) {
        if (auto self = weak.lock()) {
          self->prefetching = false;
          self->prefetch_next();
        }
      });
      return;
    }
  }
};

BanPhotos::BanPhotos(boost::asio::io_context& io, BanPhotoSettings settings)
    : impl_(std::make_shared<Impl>(io, std::move(settings))) {}

BanPhotos::~BanPhotos() { stop(); }

void BanPhotos::get(const std::string& url, std::function<void(Result<Photo>)> done) {
  impl_->get(url, std::move(done));
}

void BanPhotos::prefetch(std::vector<std::string> urls) {
  for (auto& url : urls) {
    if (impl_->queue.size() >= kMaxQueued) break;
    if (!check_url(url) || impl_->queued.count(url)) continue;
    impl_->queued.insert(url);
    impl_->queue.push_back(std::move(url));
  }
  if (!impl_->prefetching) impl_->prefetch_next();
}

std::uint64_t BanPhotos::fetched() const { return impl_->fetched; }
std::uint64_t BanPhotos::refused() const { return impl_->refused; }

void BanPhotos::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping->store(true);
  impl_->pending.clear();
  impl_->queue.clear();
  impl_->queued.clear();
}

Result<void> BanPhotos::check_url(const std::string& url) {
  if (url.size() > kMaxUrl) return Error{Errc::invalid, "its URL is longer than 2,048 characters"};
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f)
      return Error{Errc::invalid, "its URL has a space or a character outside ASCII"};
  }
  if (url_scheme(url) != "https") return Error{Errc::invalid, "its URL is not https"};
  const auto rest = url.substr(8);
  const auto authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string::npos)
    return Error{Errc::invalid, "its URL carries a user name"};
  if (url_host(url).empty() || url_port(url) < 0)
    return Error{Errc::invalid, "its URL has no host or a bad port"};
  return ok();
}

std::string BanPhotos::image_type(std::string_view b) {
  if (b.size() >= 3 && b.substr(0, 3) == std::string_view("\xFF\xD8\xFF", 3)) return "image/jpeg";
  if (b.size() >= 8 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1A\n", 8))
    return "image/png";
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return "image/webp";
  return "";
}

}  // namespace secbox::lan
