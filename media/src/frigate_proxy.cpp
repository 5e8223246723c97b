#include "media/frigate_proxy.hpp"

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
#include "common/lifetime.hpp"
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
      : loop(l), settings(std::move(s)), snapshots(l, 2),
        streams_pool(l, std::max<std::size_t>(1, settings.max_streams)), housekeeping(l),
        flusher(l) {}

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
  Lifetime life{loop};  // snapshots and streams out on the pools
  log::Logger log{"frigate"};

  std::uint64_t hold(Reply r) { return held_replies.hold(std::move(r)); }
  std::optional<Reply> take(std::uint64_t id) { return held_replies.take(id); }

  std::string url(const std::string& path) const {
    std::string base = settings.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base + path;
  }

  void snapshot(const Envelope& req, Reply reply) {
    const std::string camera = req.payload["camera"];
    if (!is_frigate_camera(camera))
      return reply.error(protocol::ErrorCode::invalid_args, "camera is not a Frigate camera name");
    std::string path = "/api/" + camera + "/latest.jpg";
    if (req.payload.contains("height") && req.payload["height"].is_number_integer()) {
      path += "?height=" + std::to_string(req.payload["height"].get<int>());
    }
    auto id = hold(std::move(reply));
    life.begin();
    HttpRequest get_snapshot;
    get_snapshot.url = url(path);
    get_snapshot.timeout = settings.answer_timeout;
    get_snapshot.max_response = 16u << 20;
    get_snapshot.accept = "image/jpeg";
    snapshots.run([get_snapshot] { return get(get_snapshot); },
                  [self = shared_from_this(), id, camera](Result<HttpResponse> answer) {
                    if (!self->life.end()) return;
                    auto r = self->take(id);
                    if (!r) return;
                    const long status = answer ? answer.value().status : 0;
                    if (status == 404)
                      return r->error(protocol::ErrorCode::not_found,
                                      "Frigate has no camera " + camera);
                    if (status != 200) {
                      const std::string why = answer ? "" : answer.error().message;
                      self->log.warn("Frigate did not answer a snapshot.",
                                     {{"camera", camera},
                                      {"status", static_cast<std::int64_t>(status)},
                                      {"reason", why}});
                      return r->error(protocol::ErrorCode::unavailable,
                                      status ? "Frigate answered " + std::to_string(status)
                                             : "Frigate did not answer: " + why);
                    }
                    const std::string& body = answer.value().body;
                    protocol::BinaryHeader h;
                    h.type = protocol::BinaryType::frigate_snapshot_result;
                    h.re = r->request_id();
                    if (!self->router || !self->router->send_binary(h, body)) return;
                    r->release();  // answered by the binary frame
                  });
  }

  void stream_start(const Envelope& req, Reply reply) {
    const std::string camera = req.payload["camera"];
    if (!is_frigate_camera(camera))
      return reply.error(protocol::ErrorCode::invalid_args, "camera is not a Frigate camera name");
    if (streams.size() >= settings.max_streams) {
      return reply.error(protocol::ErrorCode::busy,
                         std::to_string(settings.max_streams) + " streams are already running");
    }
    std::string path = "/api/" + camera + "?fps=" + std::to_string(req.payload["fps"].get<int>());
    if (req.payload.contains("height") && req.payload["height"].is_number_integer()) {
      path += "&height=" + std::to_string(req.payload["height"].get<int>());
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
    life.begin();
    std::weak_ptr<Impl> weak = shared_from_this();
    streams_pool.run([u = url(path), shared, weak, id, st = settings,
                      &loop = loop]() { return pump(u, shared, weak, id, st, loop); },
                     [self = shared_from_this(), id](StreamEnd end) {
                       if (self->life.end()) self->stream_ended(id, end);
                     });
    arm_housekeeping();
  }

  // Worker: the MJPEG stream until it ends or is stopped; frames go to the loop.
  static StreamEnd pump(const std::string& u, std::shared_ptr<StreamShared> shared,
                        std::weak_ptr<Impl> weak, const std::string& id, const FrigateSettings& st,
                        boost::asio::io_context& loop) {
    std::optional<MjpegParser> parser;
    auto last_data = SteadyClock::now();
    bool answered = false, stalled = false;
    StreamHandlers h;
    h.on_head = [&](long status, const std::string& type) {
      answered = true;
      if (status != 200 || shared->stop) return false;
      parser.emplace(MjpegParser::boundary_of(type), st.max_frame);
      boost::asio::post(loop, [weak, id] {
        if (auto self = weak.lock()) self->stream_answered(id);
      });
      return true;
    };
    h.on_data = [&](std::string_view piece) {
      if (shared->stop) return false;
      last_data = SteadyClock::now();
      parser->feed(piece, [&](std::string&& jpeg) {
        boost::asio::post(loop, [weak, id, jpeg = std::move(jpeg)]() mutable {
          if (auto self = weak.lock()) self->on_frame(id, std::move(jpeg));
        });
      });
      return true;
    };
    // About once a second even while nothing arrives: stops and stalls.
    h.on_tick = [&] {
      if (shared->stop) return false;
      if (answered && SteadyClock::now() - last_data > st.stall_timeout) {
        stalled = true;
        return false;
      }
      return true;
    };
    // An endless stream: no total time limit. Until Frigate answers, the
    // answer time limit; after, a stream silent for stall_timeout ends
    // (curl's own low-speed check averages over seconds of past data).
    StreamRequest req;
    req.url = u;
    req.connect_timeout = st.answer_timeout;
    req.low_speed_time = std::chrono::seconds(
        std::max<long>(1, static_cast<long>(st.answer_timeout.count() / 1000)));
    auto status = get_stream(req, h);
    StreamEnd end;
    end.status = status ? status.value() : 0;
    if (stalled) {
      end.error = "Frigate sent nothing for " + std::to_string(st.stall_timeout.count()) + " ms";
    } else if (!status && !shared->stop) {
      end.error = status.error().message;
    }
    return end;
  }

  void stream_answered(const std::string& id) {
    auto it = streams.find(id);
    if (it == streams.end() || !it->second.pending_reply) return;
    if (auto r = take(*it->second.pending_reply))
      r->send("frigate.stream.started", {{"streamId", id}});
    it->second.pending_reply.reset();
    log.info("Frigate stream started.", {{"stream", id}, {"camera", it->second.camera}});
  }

  void on_frame(const std::string& id, std::string&& jpeg) {
    auto it = streams.find(id);
    if (it == streams.end() || life.stopping()) return;
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
      if (ec || self->life.stopping()) return;
      bool more = false;
      for (auto& [id, s] : self->streams) {
        while (!s.held.empty() && self->send(s, s.held.front().first, s.held.front().second))
          s.held.pop_front();
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
          r->error(protocol::ErrorCode::unavailable,
                   end.status ? "Frigate answered " + std::to_string(end.status)
                              : "Frigate did not answer: " + end.error);
        }
      }
    }
    log.warn("A Frigate stream ended.", {{"stream", id},
                                         {"camera", it->second.camera},
                                         {"status", static_cast<std::int64_t>(end.status)},
                                         {"reason", end.error}});
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
      if (ec || self->life.stopping()) return;
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
};

FrigateProxy::FrigateProxy(boost::asio::io_context& loop, protocol::Router& d,
                           FrigateSettings settings)
    : impl_(std::make_shared<Impl>(loop, std::move(settings))) {
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
    if (!self->streams.count(id))
      return r.error(protocol::ErrorCode::not_found, "no stream " + id.substr(0, 128));
    self->stop_stream(id, "asked");
    r.send("ack");
  });
  d.on_notice("frigate.stream.keepalive", [weak](const Envelope& e) {
    auto self = weak.lock();
    if (!self || !e.payload.is_object() || !e.payload.contains("streamId") ||
        !e.payload["streamId"].is_string())
      return;
    auto it = self->streams.find(e.payload["streamId"].get<std::string>());
    if (it != self->streams.end()) it->second.keepalive = SteadyClock::now();
  });
  d.on_session({nullptr, [weak] {
                  if (auto self = weak.lock()) self->tunnel_lost();
                }});
}

FrigateProxy::~FrigateProxy() {
  impl_->life.stop(nullptr);
  impl_->tunnel_lost();
}

void FrigateProxy::stop(std::function<void()> on_stopped) {
  auto& i = *impl_;
  i.life.assert_on_loop("FrigateProxy::stop");
  i.tunnel_lost();
  i.housekeeping.cancel();
  i.flusher.cancel();
  i.life.stop(std::move(on_stopped));  // once every snapshot and stream is back
}

FrigateStats FrigateProxy::stats() const { return impl_->stats; }

}  // namespace secbox::media
