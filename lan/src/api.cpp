#include "lan/api.hpp"

#include "api_impl.hpp"

namespace secbox::lan {

LanApi::LanApi(BlockingPool& workers, replica::ReplicaReads& reader, replica::EventSink& queue,
               LanApiSettings settings, std::function<json()> status)
    : impl_(
          std::make_shared<Impl>(workers, reader, queue, std::move(settings), std::move(status))) {
  if (impl_->settings.alarms) {
    impl_->feed_subscription =
        impl_->settings.alarms->subscribe([weak = std::weak_ptr<Impl>(impl_)](const json& a) {
          if (auto self = weak.lock(); self && !self->stopped) self->broadcast(a);
        });
  }
}

std::string LanApi::normalize_plate(const std::string& plate) {
  return secbox::normalize_plate(plate);
}

std::string LanApi::normalize_name(const std::string& name) {
  // Lowercase ASCII, Latin-1 accented letters folded to their base letter
  // (the names of a Spanish-speaking community), runs of spaces collapsed.
  static const std::map<std::string, char> kFold = {
      {"á", 'a'}, {"à", 'a'}, {"ä", 'a'}, {"â", 'a'}, {"Á", 'a'}, {"À", 'a'}, {"Ä", 'a'},
      {"Â", 'a'}, {"é", 'e'}, {"è", 'e'}, {"ë", 'e'}, {"ê", 'e'}, {"É", 'e'}, {"È", 'e'},
      {"Ë", 'e'}, {"Ê", 'e'}, {"í", 'i'}, {"ì", 'i'}, {"ï", 'i'}, {"î", 'i'}, {"Í", 'i'},
      {"Ì", 'i'}, {"Ï", 'i'}, {"Î", 'i'}, {"ó", 'o'}, {"ò", 'o'}, {"ö", 'o'}, {"ô", 'o'},
      {"Ó", 'o'}, {"Ò", 'o'}, {"Ö", 'o'}, {"Ô", 'o'}, {"ú", 'u'}, {"ù", 'u'}, {"ü", 'u'},
      {"û", 'u'}, {"Ú", 'u'}, {"Ù", 'u'}, {"Ü", 'u'}, {"Û", 'u'}, {"ñ", 'n'}, {"Ñ", 'n'},
      {"ç", 'c'}, {"Ç", 'c'}};
  std::string out;
  for (std::size_t i = 0; i < name.size();) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c >= 0xC0 && i + 1 < name.size()) {
      auto it = kFold.find(name.substr(i, 2));
      if (it != kFold.end()) {
        out += it->second;
        i += 2;
        continue;
      }
    }
    if (std::isspace(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(c < 0x80 ? std::tolower(c) : c);
    }
    ++i;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

LanApi::~LanApi() {
  impl_->close_streams("");
  impl_->stopped = true;
  impl_->ping.cancel();
  impl_->prefetch_timer.cancel();
  if (impl_->settings.alarms) impl_->settings.alarms->unsubscribe(impl_->feed_subscription);
}

void LanApi::replica_changed(const std::string& entity) {
  impl_->ban_list_body.reset();
  impl_->guards_body.reset();
  // The photos of new bans fetched ahead, once changes settle (a snapshot
  // arrives in chunks): nobody has to open the list first.
  if (impl_->settings.photos && (entity.empty() || entity == "banned_visitor") &&
      !impl_->prefetch_armed) {
    impl_->prefetch_armed = true;
    impl_->prefetch_timer.expires_after(std::chrono::seconds(2));
    impl_->prefetch_timer.async_wait(
        [weak = std::weak_ptr<Impl>(impl_)](boost::system::error_code ec) {
          auto self = weak.lock();
          if (ec || !self || self->stopped) return;
          self->prefetch_armed = false;
          self->with_ban_list([](bool) {});
        });
  }
  if (entity.empty() || entity == "user") impl_->recheck_sessions();
}

namespace {

using Session = LanApi::Impl::Session;

// One route of the LAN API: dispatch and the metrics' route label both come
// from this table. A route without `signed_in` is served before the
// session is checked (login, the guard list the login page shows, health,
// the scrapers' metrics).
struct Route {
  const char* method;  // nullptr: any
  const char* path;
  bool signed_in;
  void (*serve)(LanApi::Impl& i, const httpd::Request& r, const Session* who, httpd::Reply reply);
};

const std::vector<Route>& routes() {
  using I = LanApi::Impl;
  using R = const httpd::Request&;
  static const std::vector<Route> kRoutes = {
      {nullptr, "/healthz", false,
       [](I&, R, const Session*, httpd::Reply reply) {
         reply(ok_json({{"status", "ok"}}));
       }},
      {"GET", "/metrics", false,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.metrics(r, std::move(reply)); }},
      {"POST", "/api/lan/login", false,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.login(r, std::move(reply)); }},
      {"GET", "/api/lan/guards", false,
       [](I& i, R, const Session*, httpd::Reply reply) { i.guard_list(std::move(reply)); }},
      {"POST", "/api/lan/logout", true,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.logout(r, std::move(reply)); }},
      {"GET", "/api/lan/ban-list", true,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.ban_list(r, std::move(reply)); }},
      {"GET", "/api/lan/schedule", true,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.schedule(r, std::move(reply)); }},
      {"GET", "/api/lan/status", true,
       [](I& i, R, const Session*, httpd::Reply reply) {
         reply(ok_json(i.status ? i.status() : json::object()));
       }},
      {"GET", "/api/lan/streams", true,
       [](I& i, R, const Session*, httpd::Reply reply) {
         reply(ok_json({{"streams", i.settings.streams ? i.settings.streams() : json::array()}}));
       }},
      {"POST", "/api/lan/entries", true,
       [](I& i, R r, const Session* who, httpd::Reply reply) {
         i.record("visitor_entry", *who, r, std::move(reply));
       }},
      {"POST", "/api/lan/notes", true,
       [](I& i, R r, const Session* who, httpd::Reply reply) {
         i.record("guard_note", *who, r, std::move(reply));
       }},
      {"POST", "/api/lan/check", true,
       [](I& i, R r, const Session* who, httpd::Reply reply) {
         i.check(*who, r, std::move(reply));
       }},
      {"GET", "/api/lan/alarms", true,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.alarm_list(r, std::move(reply)); }},
      {"GET", "/api/lan/alarms/stream", true,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.alarm_stream(r, std::move(reply)); }},
      {"POST", "/api/lan/alarms/answer", true,
       [](I& i, R r, const Session* who, httpd::Reply reply) {
         i.answer_alarm(*who, r, std::move(reply));
       }},
      {"GET", "/api/lan/alarms/snapshot", true,
       [](I& i, R r, const Session*, httpd::Reply reply) {
         i.alarm_snapshot(r, std::move(reply));
       }},
      {"GET", "/api/lan/bans/photo", true,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.ban_photo(r, std::move(reply)); }},
      {"GET", "/api/lan/cameras/live", true,
       [](I& i, R r, const Session*, httpd::Reply reply) { i.live_video(r, std::move(reply)); }},
  };
  return kRoutes;
}

const Route* find_route(const std::string& path) {
  for (const auto& route : routes()) {
    if (path == route.path) return &route;
  }
  return nullptr;
}

}  // namespace

// A bounded label: the known routes, "/hls" for segments, "static" for
// files, "other" for the rest.
std::string route_label(const httpd::Request& r) {
  if (const auto* route = find_route(r.path)) return route->path;
  if (r.path.rfind("/hls/", 0) == 0) return "/hls";
  return r.path.rfind("/api/", 0) == 0 ? "other" : "static";
}

void LanApi::Impl::metrics(const httpd::Request& r, httpd::Reply reply) {
  // Whether cameras, Frigate and the tunnel are up is the attacker's map:
  // only the configured scrapers read it.
  const std::string auth = r.header("authorization");
  const std::string& want = settings.metrics_token;
  const bool by_token = !want.empty() && auth.size() == 7 + want.size() &&
                        auth.rfind("Bearer ", 0) == 0 &&
                        CRYPTO_memcmp(auth.data() + 7, want.data(), want.size()) == 0;
  if (!by_token && !settings.metrics_allow.contains(r.remote_address)) {
    return reply(
        error(403, "forbidden",
              "Metrics are for the configured scrapers: METRICS_ALLOW (addresses) or METRICS_TOKEN "
              "(Authorization: Bearer …) in secbox.env; see docs/metrics.md."));
  }
  httpd::Response res;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.headers.emplace_back("Cache-Control", "no-store");
  PrometheusText text;
  text.gauge("secbox_lan_login_failure_entries", "Entries of the failed-login tables (bounded).",
             static_cast<double>(by_guard.size() + by_address.size() + by_pair.size()));
  text.family("secbox_lan_logins_slowed_total",
              "Logins that waited because their guard had wrong PINs from elsewhere (a "
              "slow-down, not a lockout).",
              "counter", {{"", static_cast<double>(slowed_logins)}});
  std::vector<PrometheusText::Sample> samples;
  for (const auto& [key, count] : requests) {
    const std::string status = std::to_string(key.second);
    samples.emplace_back(PrometheusText::labels({{"route", key.first}, {"status", status}}),
                         static_cast<double>(count));
  }
  text.family("secbox_http_requests_total", "LAN HTTP requests answered, by route and status.",
              "counter", samples);
  res.body = (settings.metrics ? settings.metrics() : std::string()) + text.take();
  reply(std::move(res));
}

void LanApi::handle(httpd::Request r, httpd::Reply reply) {
  auto& i = *impl_;
  i.affinity.assert_on_loop("LanApi::handle");
  // Count every answer by route and status.
  reply = [impl = impl_, route = route_label(r), reply = std::move(reply)](httpd::Response res) {
    ++impl->requests[{route, res.status}];
    reply(std::move(res));
  };
  const Route* route = find_route(r.path);
  const bool is_api = r.path.rfind("/api/", 0) == 0;
  if (route && route->method && r.method != route->method) {
    // An API path asked with another method is no route (as before the
    // table); a page's, a 405.
    if (!is_api) return reply(error(405, "method_not_allowed", "Use GET."));
    route = nullptr;
  }
  if (route && !route->signed_in) return route->serve(i, r, nullptr, std::move(reply));
  if (!route && r.path.rfind("/hls/", 0) == 0) {
    if (r.method != "GET") return reply(error(405, "method_not_allowed", "Use GET."));
    if (!i.authenticate(r)) {
      auto res = error(401, "unauthorized",
                       "Log in first; the player sends Authorization: Bearer <token>.");
      res.headers.emplace_back("WWW-Authenticate", "Bearer");
      return reply(std::move(res));
    }
    return i.hls_file(r, std::move(reply));
  }
  if (!route && !is_api) {
    if (r.method != "GET" && r.method != "HEAD")
      return reply(error(405, "method_not_allowed", "Use GET."));
    return i.static_file(r, std::move(reply));
  }
  auto session = i.authenticate(r);
  if (!session) {
    auto res =
        error(401, "unauthorized",
              "Log in first (POST /api/lan/login), then send Authorization: Bearer <token>.");
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    return reply(std::move(res));
  }
  if (r.trust) r.trust();  // a guard's connection: never closed to make room for a newcomer
  if (route) return route->serve(i, r, &*session, std::move(reply));
  reply(error(404, "not_found", "No such API route."));
}

}  // namespace secbox::lan
