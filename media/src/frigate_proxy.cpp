#include "media/frigate_proxy.hpp"

#include <curl/curl.h>

#include <atomic>
#include <deque>
#include <map>
#include <regex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/blocking.hpp"
#include "common/http_client.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "media/multipart.hpp"
#include "protocol/held_replies.hpp"
#include "protocol/router.hpp"
#include "protocol/envelope.hpp"

namespace secbox::media {
namespace {

using SteadyClock = std::chrono::steady_clock;
using protocol::Envelope;
using protocol::Reply;

bool is_frigate_camera(const std::string& c) {
  static const std::regex kName("^[A-Za-z0-9_-]{1,64}$");
  return std::regex_match(c, kName);
}

struct Fetched {
  long status = 0;  // 0: no answer
  std::string error;
  std::string body;
  std::string content_type;
};

std::size_t collect(char* data, std::size_t size, std::size_t n, void* user) {
  auto* f = static_cast<Fetched*>(user);
  if (f->body.size() + size * n > (16u << 20)) return 0;
  f->body.append(data, size * n);
  return size * n;
}

// One GET with a total time limit (worker thread).
Fetched get(const std::string& url, std::chrono::milliseconds limit) {
  curl_init_once();
  Fetched f;
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(limit.count()));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &f);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    f.error = curl_easy_strerror(rc);
    return f;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &f.status);
  return f;
}

// What a stream's worker shares with the loop.
struct StreamShared {
  std::atomic<bool> stop{false};
};

struct StreamEnd {
  long status = 0;
  std::string error;
};

}  // namespace

struct FrigateProxy::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& l, FrigateSettings s)
      : loop(l), settings(std::move(s)), snapshots(l, 2), streams_pool(l, std::max<std::size_t>(1, settings.max_streams)),
        housekeeping(l), flusher(l) {}

  struct Stream {
    std::string id, re, camera;
    std::shared_ptr<StreamShared> shared;
    std::deque<std::pair<std::uint64_t, std::string>> held;  // (seq, jpeg), oldest first
    std::uint64_t seq = 0;
    SteadyClock::time_point keepalive;
    std::optional<std::uint64_t> pending_reply;  // until Frigate answers
  };

  boost::asio::io_context& loop;
  FrigateSettings settings;
  BlockingPool snapshots;
  BlockingPool streams_pool;
  boost::asio::steady_timer housekeeping, flusher;
  bool flushing = false;
  protocol::Router* router = nullptr;
  std::map<std::string, Stream> streams;
  protocol::HeldReplies held_replies;
  FrigateStats stats;
  int in_flight = 0;
  bool stopping = false;
  std::function<void()> on_stopped;
  log::Logger log{"frigate"};

  std::uint64_t hold(Reply r) { return held_replies.hold(std::move(r)); }
  std::optional<Reply> take(std::uint64_t id) { return held_replies.take(id); }
  void done_one() {
    --in_flight;
    if (stopping && in_flight == 0 && on_stopped) {
      auto f = std::move(on_stopped);
      on_stopped = nullptr;
      f();
    }
  }

  std::string url(const std::string& path) const {
    std::string base = settings.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base + path;
  }

  void snapshot(const Envelope& req, Reply reply) {
    const std::string camera = req.payload["camera"];
    if (!is_frigate_camera(camera)) return reply.error(protocol::ErrorCode::invalid_args, "camera is not a Frigate camera name");
    std::string path = "/api/" + camera + "/latest.jpg";
    if (req.payload.contains("height") && req.payload["height"].is_number_integer()) {
      path += "?h=" + std::to_string(req.payload["height"].get<int>());
    }
    auto id = hold(std::move(reply));
    ++in_flight;
    snapshots.run([u = url(path), limit = settings.answer_timeout] { return get(u, limit); },
                  [self = shared_from_this(), id, camera](Fetched f) {
                    self->done_one();
                    auto r = self->take(id);
                    if (!r || self->stopping) return;
                    if (f.status == 404) return r->error(protocol::ErrorCode::not_found, "Frigate has no camera " + camera);
                    if (f.status != 200) {
                      self->log.warn("Frigate did not answer a snapshot.",
                                     {{"camera", camera}, {"status", static_cast<std::int64_t>(f.status)}, {"reason", f.error}});
                      return r->error(protocol::ErrorCode::unavailable, f.status ? "Frigate answered " + std::to_string(f.status)
                                                              : "Frigate did not answer: " + f.error);
                    }
                    protocol::BinaryHeader h;
                    h.type = protocol::BinaryType::frigate_snapshot_result;
                    h.re = r->request_id();
                    if (!self->router || !self->router->send_binary(h, f.body)) return;
                    r->release();  // answered by the binary frame
                  });
  }

  void stream_start(const Envelope& req, Reply reply) {
    const std::string camera = req.payload["camera"];
    if (!is_frigate_camera(camera)) return reply.error(protocol::ErrorCode::invalid_args, "camera is not a Frigate camera name");
    if (streams.size() >= settings.max_streams) {
      return reply.error(protocol::ErrorCode::busy, std::to_string(settings.max_streams) + " streams are already running");
    }
    std::string path = "/api/" + camera + "?fps=" + std::to_string(req.payload["fps"].get<int>());
    if (req.payload.contains("height") && req.payload["height"].is_number_integer()) {
      path += "&h=" + std::to_string(req.payload["height"].get<int>());
    }
    Stream s;
    s.id = "st-" + random_uuid();
    s.re = req.id;
    s.camera = camera;
    s.shared = std::make_shared<StreamShared>();
    s.keepalive = SteadyClock::now();
    s.pending_reply = hold(std::move(reply));
    const std::string id = s.id;
    auto shared = s.shared;
    streams.emplace(id, std::move(s));
    ++stats.streams;
    ++in_flight;
    std::weak_ptr<Impl> weak = shared_from_this();
    streams_pool.run(
        [u = url(path), shared, weak, id, st = settings, &loop = loop]() { return pump(u, shared, weak, id, st, loop); },
        [self = shared_from_this(), id](StreamEnd end) {
          self->done_one();
          self->stream_ended(id, end);
        });
    arm_housekeeping();
  }

  // Worker: the MJPEG stream until it ends or is stopped; frames go to the loop.
  static StreamEnd pump(const std::string& u, std::shared_ptr<StreamShared> shared, std::weak_ptr<Impl> weak,
                        const std::string& id, const FrigateSettings& st, boost::asio::io_context& loop) {
    curl_init_once();
    struct Ctx {
      CURL* curl;
      std::shared_ptr<StreamShared> shared;
      std::weak_ptr<Impl> weak;
      std::string id;
      boost::asio::io_context& loop;
      std::optional<MjpegParser> parser;
      bool answered = false;
      long status = 0;
      std::size_t max_frame;
      SteadyClock::time_point last_data;
      std::chrono::milliseconds stall;
      bool stalled = false;
    } ctx{nullptr, shared, weak, id, loop, std::nullopt, false, 0, st.max_frame, SteadyClock::now(), st.stall_timeout, false};
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    ctx.curl = curl.get();
    auto on_data = +[](char* data, std::size_t size, std::size_t n, void* user) -> std::size_t {
      auto* c = static_cast<Ctx*>(user);
      if (c->shared->stop) return 0;
      c->last_data = SteadyClock::now();
      if (!c->answered) {
        c->answered = true;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
        if (c->status != 200) return 0;
        char* type = nullptr;
        curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &type);
        c->parser.emplace(MjpegParser::boundary_of(type ? type : ""), c->max_frame);
        boost::asio::post(c->loop, [weak = c->weak, id = c->id] {
          if (auto self = weak.lock()) self->stream_answered(id);
        });
      }
      c->parser->feed(std::string_view(data, size * n), [c](std::string&& jpeg) {
        boost::asio::post(c->loop, [weak = c->weak, id = c->id, jpeg = std::move(jpeg)]() mutable {
          if (auto self = weak.lock()) self->on_frame(id, std::move(jpeg));
        });
      });
      return size * n;
    };
    // Called about once a second even while nothing arrives: stops and stalls.
    auto on_progress = +[](void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
      auto* c = static_cast<Ctx*>(user);
      if (c->shared->stop) return 1;
      if (c->answered && SteadyClock::now() - c->last_data > c->stall) {
        c->stalled = true;
        return 1;
      }
      return 0;
    };
    curl_easy_setopt(curl.get(), CURLOPT_URL, u.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(st.answer_timeout.count()));
    // An endless stream: no total time limit. Until Frigate answers, the
    // answer time limit; after, a stream silent for stall_timeout ends
    // (curl's own low-speed check averages over seconds of past data).
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME,
                     std::max<long>(1, static_cast<long>(st.answer_timeout.count() / 1000)));
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &ctx);
    curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &ctx);
    CURLcode rc = curl_easy_perform(curl.get());
    StreamEnd end;
    if (!ctx.answered) curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &ctx.status);  // an answer with no body
    end.status = ctx.status;
    if (ctx.stalled) {
      end.error = "Frigate sent nothing for " + std::to_string(st.stall_timeout.count()) + " ms";
    } else if (rc != CURLE_OK && !shared->stop) {
      end.error = curl_easy_strerror(rc);
    }
    return end;
  }

  void stream_answered(const std::string& id) {
    auto it = streams.find(id);
    if (it == streams.end() || !it->second.pending_reply) return;
    if (auto r = take(*it->second.pending_reply)) r->send("frigate.stream.started", {{"streamId", id}});
    it->second.pending_reply.reset();
    log.info("Frigate stream started.", {{"stream", id}, {"camera", it->second.camera}});
  }

  void on_frame(const std::string& id, std::string&& jpeg) {
    auto it = streams.find(id);
    if (it == streams.end() || stopping) return;
    Stream& s = it->second;
    ++stats.frames_read;
    const std::uint64_t seq = ++s.seq;  // every frame read counts, sent or not
    if (s.held.empty() && send(s, seq, jpeg)) return;
    s.held.emplace_back(seq, std::move(jpeg));
    while (s.held.size() > settings.max_held) {  // newest wins
      s.held.pop_front();
      ++stats.frames_dropped;
    }
    arm_flusher();
  }

  bool send(Stream& s, std::uint64_t seq, const std::string& jpeg) {
    if (!router || !router->writable()) return false;
    protocol::BinaryHeader h;
    h.type = protocol::BinaryType::frigate_frame;
    h.re = s.re;
    h.stream = s.id;
    h.seq = seq;
    if (!router->send_binary(h, jpeg)) return false;
    ++stats.frames_sent;
    return true;
  }

  void arm_flusher() {
    if (flushing) return;
    flushing = true;
    flusher.expires_after(std::chrono::milliseconds(10));
    flusher.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      self->flushing = false;
      if (ec || self->stopping) return;
      bool more = false;
      for (auto& [id, s] : self->streams) {
        while (!s.held.empty() && self->send(s, s.held.front().first, s.held.front().second)) s.held.pop_front();
        more = more || !s.held.empty();
      }
      if (more) self->arm_flusher();
    });
  }

  void stream_ended(const std::string& id, const StreamEnd& end) {
    auto it = streams.find(id);
    if (it == streams.end()) return;  // stopped on purpose
    if (it->second.pending_reply) {
      if (auto r = take(*it->second.pending_reply)) {
        if (end.status == 404) {
          r->error(protocol::ErrorCode::not_found, "Frigate has no camera " + it->second.camera);
        } else {
          r->error(protocol::ErrorCode::unavailable, end.status ? "Frigate answered " + std::to_string(end.status)
                                             : "Frigate did not answer: " + end.error);
        }
      }
    }
    log.warn("A Frigate stream ended.", {{"stream", id}, {"camera", it->second.camera},
                                         {"status", static_cast<std::int64_t>(end.status)}, {"reason", end.error}});
    streams.erase(it);
  }

  void stop_stream(const std::string& id, const char* why) {
    auto it = streams.find(id);
    if (it == streams.end()) return;
    it->second.shared->stop = true;
    if (it->second.pending_reply) take(*it->second.pending_reply);
    log.info("Frigate stream stopped.", {{"stream", id}, {"why", why}});
    streams.erase(it);
  }

  void arm_housekeeping() {
    housekeeping.expires_after(std::chrono::seconds(1));
    housekeeping.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopping) return;
      const auto now = SteadyClock::now();
      std::vector<std::string> expired;
      for (const auto& [id, s] : self->streams) {
        if (now - s.keepalive > self->settings.keepalive) expired.push_back(id);
      }
      for (const auto& id : expired) self->stop_stream(id, "no keepalive");
      if (!self->streams.empty()) self->arm_housekeeping();
    });
  }

  void tunnel_lost() {
    std::vector<std::string> ids;
    for (const auto& [id, s] : streams) ids.push_back(id);
    for (const auto& id : ids) stop_stream(id, "tunnel lost");
    held_replies.release_all();
  }

  void detach() {
    tunnel_lost();
    router = nullptr;
  }
};

FrigateProxy::FrigateProxy(boost::asio::io_context& loop, FrigateSettings settings)
    : impl_(std::make_shared<Impl>(loop, std::move(settings))) {}

FrigateProxy::~FrigateProxy() {
  impl_->stopping = true;
  impl_->detach();
}

void FrigateProxy::attach(protocol::Router& d) {
  impl_->router = &d;
  std::weak_ptr<Impl> weak = impl_;
  d.on_request("frigate.snapshot", [weak](const Envelope& e, Reply r) {
    if (auto self = weak.lock()) self->snapshot(e, std::move(r));
  });
  d.on_request("frigate.stream.start", [weak](const Envelope& e, Reply r) {
    if (auto self = weak.lock()) self->stream_start(e, std::move(r));
  });
  d.on_request("frigate.stream.stop", [weak](const Envelope& e, Reply r) {
    auto self = weak.lock();
    if (!self) return;
    const std::string id = e.payload["streamId"];
    if (!self->streams.count(id)) return r.error(protocol::ErrorCode::not_found, "no stream " + id.substr(0, 128));
    self->stop_stream(id, "asked");
    r.send("ack");
  });
  d.on_notice("frigate.stream.keepalive", [weak](const Envelope& e) {
    auto self = weak.lock();
    if (!self || !e.payload.is_object() || !e.payload.contains("streamId") || !e.payload["streamId"].is_string()) return;
    auto it = self->streams.find(e.payload["streamId"].get<std::string>());
    if (it != self->streams.end()) it->second.keepalive = SteadyClock::now();
  });
}

void FrigateProxy::detach() { impl_->detach(); }
void FrigateProxy::tunnel_lost() { impl_->tunnel_lost(); }

void FrigateProxy::stop(std::function<void()> on_stopped) {
  auto& i = *impl_;
  i.detach();
  i.stopping = true;
  i.housekeeping.cancel();
  i.flusher.cancel();
  if (i.in_flight == 0) return boost::asio::post(i.loop, std::move(on_stopped));
  i.on_stopped = std::move(on_stopped);
}

FrigateStats FrigateProxy::stats() const { return impl_->stats; }

}  // namespace secbox::media
