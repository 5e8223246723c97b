// The LAN API: the live view and the alarm streams (server-sent events), their limits and pings.
#include "api_impl.hpp"

namespace secbox::lan {

std::string LanApi::Impl::sse(const char* event, const json& data) {
  return std::string("event: ") + event +
         "\ndata: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

void LanApi::Impl::broadcast(const json& alarm) {
  const std::string chunk = sse("alarm", compact_alarm(alarm));
  auto copy = listeners;  // a failed write closes and erases
  for (auto& [id, l] : copy) {
    if (!l.stream->write(chunk)) note_dropped_stream();
  }
}

void LanApi::Impl::note_dropped_stream() {
  ++dropped_streams;
  const auto now = SteadyClock::now();
  if (dropped_logged != SteadyClock::time_point{} && now - dropped_logged < std::chrono::minutes(1))
    return;
  dropped_logged = now;
  log.warn("An alarm stream was closed: its phone does not read what the box sends.",
           {{"dropped_since_start", static_cast<double>(dropped_streams)}});
}

void LanApi::Impl::close_streams(const std::string& token_hash) {
  auto copy = listeners;
  for (auto& [id, l] : copy) {
    if (token_hash.empty() || l.token_hash == token_hash) l.stream->close();
  }
  auto live = viewers;
  for (auto& [id, v] : live) {
    if (token_hash.empty() || v.token_hash == token_hash) v.stream->close();
  }
}

// One camera's live fMP4, as long as the phone reads it (the app's MSE
// player; fetch() with the token in a header).
void LanApi::Impl::live_video(const httpd::Request& r, httpd::Reply reply) {
  static const std::regex kCamera(R"(^camera=([a-z0-9][a-z0-9_-]{0,31})$)");
  std::smatch m;
  if (!std::regex_match(r.query, m, kCamera))
    return reply(error(400, "bad_camera", "camera=<id> is required."));
  const std::string camera = m[1];
  const std::string type = settings.live ? settings.live->type(camera) : std::string();
  if (type.empty())
    return reply(
        error(404, "not_found", "No live video for this camera (yet): play its HLS stream."));
  const std::string token_hash = sha256_hex(r.header("authorization").substr(7));
  httpd::Response res;
  res.content_type = type;
  res.headers.emplace_back("Cache-Control", "no-store");
  res.stream_backlog = settings.live_stream_backlog;
  res.stream = [self = shared_from_this(), token_hash,
                camera](std::shared_ptr<httpd::ResponseStream> stream) {
    if (self->stopped || !self->settings.live) return stream->close();
    const auto session = self->sessions.find(token_hash);
    const std::string guard_id =
        session == self->sessions.end() ? std::string() : session->second.guard_id;
    // Bounded: this guard's oldest beyond its share, then the busiest guard's.
    // A viewer closed leaves through its on_closed (which stops its feed).
    auto close_oldest_of = [&](const std::string& guard, std::size_t limit) {
      auto it = oldest_beyond(
          self->viewers, [&](const LiveListener& v) { return v.guard_id == guard; }, limit);
      if (it == self->viewers.end()) return;
      auto closing = it->second.stream;
      closing->close();
    };
    close_oldest_of(guard_id, self->settings.live_streams_per_guard);
    if (self->viewers.size() >= self->settings.live_streams) {
      close_oldest_of(
          busiest_guard(self->viewers, [](const LiveListener& v) { return v.guard_id; }), 1);
    }
    const auto id = self->next_viewer++;
    std::weak_ptr<httpd::ResponseStream> weak_stream = stream;
    LiveVideoSource::Viewer viewer{[weak_stream](std::string chunk) {
                                     auto s = weak_stream.lock();
                                     return s && s->write(std::move(chunk));
                                   },
                                   [weak_stream] {
                                     auto s = weak_stream.lock();
                                     return s ? s->waiting() : std::size_t{0};
                                   },
                                   [weak_stream] {
                                     if (auto s = weak_stream.lock()) s->close();
                                   }};
    self->viewers[id] = LiveListener{stream, token_hash, guard_id, camera, 0};
    stream->on_closed([weak = std::weak_ptr<Impl>(self), id] {
      auto s = weak.lock();
      if (!s) return;
      auto it = s->viewers.find(id);
      if (it == s->viewers.end()) return;
      const auto feed_id = it->second.feed_id;
      const auto cam = it->second.camera;
      s->viewers.erase(it);
      if (feed_id && s->settings.live) s->settings.live->unwatch(cam, feed_id);
    });
    const auto feed_id = self->settings.live->watch(camera, std::move(viewer));
    auto it = self->viewers.find(id);
    if (feed_id == 0) {
      stream->close();
      return;
    }
    if (it == self->viewers.end())
      return self->settings.live->unwatch(camera, feed_id);  // closed meanwhile
    it->second.feed_id = feed_id;
    self->schedule_ping();
  };
  reply(std::move(res));
}

// The app reads it with fetch() (the token goes in a header, never in a URL).
void LanApi::Impl::alarm_stream(const httpd::Request& r, httpd::Reply reply) {
  if (!settings.alarms) return reply(error(404, "not_found", "This box has no camera alarms."));
  const std::string token_hash = sha256_hex(r.header("authorization").substr(7));
  httpd::Response res;
  res.content_type = "text/event-stream; charset=utf-8";
  res.headers.emplace_back("Cache-Control", "no-store");
  res.stream = [self = shared_from_this(),
                token_hash](std::shared_ptr<httpd::ResponseStream> stream) {
    if (self->stopped) return stream->close();
    const auto session = self->sessions.find(token_hash);
    const std::string guard_id =
        session == self->sessions.end() ? std::string() : session->second.guard_id;
    // Bounded: the oldest of this session's streams, then of this guard's,
    // then of the guard holding the most, make room.
    auto close_oldest = [&](const std::function<bool(const Listener&)>& which, std::size_t limit) {
      auto it = oldest_beyond(self->listeners, which, limit);
      if (it == self->listeners.end()) return;
      auto closing = it->second.stream;
      self->listeners.erase(it);
      closing->close();
    };
    close_oldest([&](const Listener& l) { return l.token_hash == token_hash; },
                 self->settings.alarm_streams_per_session);
    close_oldest([&](const Listener& l) { return l.guard_id == guard_id; },
                 self->settings.alarm_streams_per_guard);
    if (self->listeners.size() >= self->settings.alarm_streams) {
      const std::string busiest =
          busiest_guard(self->listeners, [](const Listener& l) { return l.guard_id; });
      close_oldest([&](const Listener& l) { return l.guard_id == busiest; }, 1);
    }
    const auto id = self->next_listener++;
    self->listeners[id] = Listener{stream, token_hash, SteadyClock::now(), guard_id};
    stream->on_closed([weak = std::weak_ptr<Impl>(self), id] {
      if (auto s = weak.lock()) s->listeners.erase(id);
    });
    bool more = false;
    json kept = compact_alarms(self->settings.alarms->list(), kStateBudget, more);
    json state{{"alarms", std::move(kept)}, {"boot", self->settings.alarms->boot()}};
    if (more) state["more"] = true;  // older ones: GET /api/lan/alarms
    if (!stream->write("retry: 2000\n\n" + sse("state", state))) self->note_dropped_stream();
    self->schedule_ping();
  };
  reply(std::move(res));
}

// A comment on every stream: it keeps proxies and the app's watchdog happy,
// and a write to a phone that is gone fails and frees its slot. A stream
// whose session ended, or that is older than its lifetime, is closed.
void LanApi::Impl::schedule_ping() {
  if (pinging || (listeners.empty() && viewers.empty()) || stopped) return;
  pinging = true;
  ping.expires_after(settings.alarm_ping);
  ping.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->stopped) return;
    self->pinging = false;
    const auto now = SteadyClock::now();
    auto copy = self->listeners;
    for (auto& [id, l] : copy) {
      auto s = self->sessions.find(l.token_hash);
      if (s == self->sessions.end() || now >= s->second.expires ||
          now - l.opened >= self->settings.alarm_stream_lifetime) {
        l.stream->close();
      } else {
        l.stream->write(": ping\n\n");
      }
    }
    // Live video ends with its session.
    auto live = self->viewers;
    for (auto& [id, v] : live) {
      auto s = self->sessions.find(v.token_hash);
      if (s == self->sessions.end() || now >= s->second.expires) v.stream->close();
    }
    self->schedule_ping();
  });
}

void LanApi::Impl::answer_alarm(const Session& who, const httpd::Request& r, httpd::Reply reply) {
  if (!settings.alarms) return reply(error(404, "not_found", "This box has no camera alarms."));
  auto body = json::parse(r.body, nullptr, false);
  auto field = [&](const char* k) {
    auto it = body.is_object() ? body.find(k) : body.end();
    return body.is_object() && it != body.end() && it->is_string() ? it->get<std::string>()
                                                                   : std::string();
  };
  if (!body.is_object())
    return reply(error(400, "bad_json", "Send {alarmId, decision, reason?, clientId} as JSON."));
  static const std::regex kUuid(
      "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$");
  const std::string alarm_id = field("alarmId"), client_id = field("clientId");
  if (!std::regex_match(alarm_id, kUuid))
    return reply(error(400, "invalid_alarm_id", "alarmId must be the alarm's id."));
  if (!std::regex_match(client_id, kUuid)) {
    return reply(
        error(400, "invalid_client_id", "clientId must be the UUID the app gave this answer."));
  }
  const std::string at = field("occurredAt");
  if (!at.empty() && !parse_rfc3339(at)) {
    return reply(error(400, "invalid_occurred_at",
                       "occurredAt must be an RFC 3339 time, e.g. 2026-12-04T10:00:00Z."));
  }
  alarms::Answer a{who.guard_id, field("decision"), field("reason"), client_id, at};
  settings.alarms->answer(alarm_id, std::move(a),
                          [self = shared_from_this(), reply](Result<json> r) {
                            if (self->stopped) return;
                            if (!r) {
                              if (r.error().code == Errc::not_found)
                                return reply(error(404, "alarm_not_found", r.error().message));
                              if (r.error().code == Errc::invalid)
                                return reply(error(400, "invalid_answer", r.error().message));
                              return reply(queue_error(r.error()));
                            }
                            reply(ok_json({{"alarm", r.value()}}, 201));
                          });
}

void LanApi::Impl::alarm_list(const httpd::Request& r, httpd::Reply reply) {
  if (!settings.alarms) return reply(error(404, "not_found", "This box has no camera alarms."));
  const json all = settings.alarms->list();
  if (r.query.rfind("id=", 0) == 0) {  // one alarm, whole
    for (const auto& a : all) {
      if (a.value("id", "") == r.query.substr(3)) return reply(ok_json({{"alarm", app_alarm(a)}}));
    }
    return reply(error(404, "not_found", "No such alarm is kept."));
  }
  json list = json::array();
  for (const auto& a : all) list.push_back(compact_alarm(a));
  reply(ok_json({{"alarms", std::move(list)}}));
}

void LanApi::Impl::alarm_snapshot(const httpd::Request& r, httpd::Reply reply) {
  auto jpeg = settings.alarms && r.query.rfind("id=", 0) == 0
                  ? settings.alarms->snapshot(r.query.substr(3))
                  : nullptr;
  if (!jpeg) return reply(error(404, "not_found", "No snapshot for this alarm (yet)."));
  httpd::Response res;
  res.content_type = "image/jpeg";
  res.headers.emplace_back("Cache-Control", "private, max-age=3600");
  res.shared_body = std::move(jpeg);
  reply(std::move(res));
}

}  // namespace secbox::lan
