// The LAN API: the replica's reads for the guards (ban check, ban list and photos, guards, the
// day's schedule) and the events they record.
#include "api_impl.hpp"

namespace secbox::lan {

// A visitor_entry or a guard_note from the guard app: the guard is the one
// logged in, never what the body says; 201 only once the event is committed.
void LanApi::Impl::record(const std::string& type, const Session& who, const httpd::Request& r,
                          httpd::Reply reply) {
  auto body = json::parse(r.body, nullptr, false);
  if (!body.is_object())
    return reply(error(400, "bad_json", "Send the " + type + " as a JSON object."));
  auto cid = body.find("clientId");
  if (cid == body.end() || !cid->is_string()) {
    return reply(error(400, "invalid_client_id",
                       "clientId must be the UUID the app gave this " + type + "."));
  }
  replica::OutboundEvent e;
  e.client_id = cid->get<std::string>();
  e.type = type;
  e.occurred_at = format_rfc3339(std::chrono::system_clock::now());
  if (auto at = body.find("occurredAt"); at != body.end()) {
    if (!at->is_string() || !parse_rfc3339(at->get<std::string>())) {
      return reply(error(400, "invalid_occurred_at",
                         "occurredAt must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z."));
    }
    e.occurred_at = at->get<std::string>();
  }
  json data = json::object();
  const std::vector<std::string> fields = type == "visitor_entry"
                                              ? std::vector<std::string>{"guestAuthorizationId",
                                                                         "unitId",
                                                                         "name",
                                                                         "plate",
                                                                         "decision",
                                                                         "reason"}
                                              : std::vector<std::string>{"text"};
  for (const auto& f : fields) {
    if (auto it = body.find(f); it != body.end() && !it->is_null()) data[f] = *it;
  }
  data["guardId"] = who.guard_id;
  if (type == "guard_note" && data.contains("text") && data["text"].is_string() &&
      data["text"].get<std::string>().size() > 2000) {
    return reply(error(400, "invalid_event", "text must be at most 2000 characters."));
  }
  e.data = std::move(data);
  const std::string client_id = e.client_id;
  queue.enqueue(
      std::move(e), [self = shared_from_this(), client_id, reply](Result<replica::Enqueued> r) {
        if (self->stopped) return;
        if (!r) return reply(queue_error(r.error()));
        reply(ok_json(
            {{"clientId", client_id}, {"seq", r.value().seq}, {"duplicate", r.value().duplicate}},
            r.value().duplicate ? 200 : 201));
      });
}

void LanApi::Impl::check(const Session& who, const httpd::Request& r, httpd::Reply reply) {
  auto body = json::parse(r.body, nullptr, false);
  if (!body.is_object())
    return reply(error(400, "bad_json", "Send {\"plate\": \"…\"} or {\"name\": \"…\"}."));
  auto text = [&](const char* k) -> std::optional<std::string> {
    auto it = body.find(k);
    if (it == body.end() || it->is_null()) return std::string();
    if (!it->is_string() || it->get<std::string>().size() > 200) return std::nullopt;
    return it->get<std::string>();
  };
  auto plate = text("plate");
  auto name = text("name");
  if (!plate || !name)
    return reply(
        error(400, "invalid_check", "plate and name must be text of at most 200 characters."));
  const std::string p = LanApi::normalize_plate(*plate), n = LanApi::normalize_name(*name);
  if (p.empty() && n.empty())
    return reply(error(400, "invalid_check", "Give a plate or a name to check."));
  // A minimum query: one or two letters match half the list.
  if (!p.empty() && p.size() < 2)
    return reply(error(400, "check_too_short", "Type at least 2 characters of the plate."));
  if (!n.empty() && std::count_if(n.begin(), n.end(), [](char c) { return c != ' '; }) < 3) {
    return reply(error(400, "check_too_short", "Type at least 3 letters of the name."));
  }
  reader.ban_list([self = shared_from_this(), p, n, who, reply](Result<replica::BanList> bans) {
    if (self->stopped) return;
    if (!bans)
      return reply(error(503, "database_unavailable", "The box cannot read its lists right now."));
    json hits = json::array();
    std::optional<json> alarm;  // the first strong match: a plate, or the name in whole words
    for (const auto& b : bans.value().bans) {
      const bool plate_hit = !p.empty() && b.value("plate", json()).is_string() &&
                             LanApi::normalize_plate(b["plate"].get<std::string>()) == p;
      const std::string full = b.value("fullName", json()).is_string()
                                   ? LanApi::normalize_name(b["fullName"].get<std::string>())
                                   : std::string();
      const bool name_hit = !n.empty() && !full.empty() && full.find(n) != std::string::npos;
      if (plate_hit || name_hit) hits.push_back(app_ban(b));
      if (!alarm && (plate_hit || (name_hit && strong_name_match(n, full)))) alarm = b;
    }
    self->reader.schedule(today_local(), [self, p, n, who, hits, alarm,
                                          reply](Result<json> guests) {
      if (self->stopped) return;
      json expected = json::array();
      if (guests) {
        for (const auto& g : guests.value()) {
          const bool plate_hit = !p.empty() && g.value("plate", json()).is_string() &&
                                 LanApi::normalize_plate(g["plate"].get<std::string>()) == p;
          const bool name_hit = !n.empty() && g.value("guestName", json()).is_string() &&
                                LanApi::normalize_name(g["guestName"].get<std::string>()).find(n) !=
                                    std::string::npos;
          if (plate_hit || name_hit) expected.push_back(g);
        }
      }
      json answer{{"bans", hits}, {"guests", expected}, {"banned", !hits.empty()}};
      if (!alarm) {
        if (!hits.empty()) answer["alarm"] = "weak_match";  // shown to the guard, not an alarm
        return reply(ok_json(answer));
      }
      const std::string ban_id =
          (*alarm)["id"].is_string() ? (*alarm)["id"].get<std::string>() : "";
      const std::string budget = self->alarms.take(who.guard_id, ban_id, SteadyClock::now());
      answer["alarm"] = budget;
      if (budget != "raised") {
        answer["banHitRecorded"] = false;
        if (budget == "limit") {
          self->log.warn("A guard's alarms are over their limit; this ban hit is not queued.",
                         {{"guard_id", who.guard_id}, {"banned_visitor_id", ban_id}});
        }
        return reply(ok_json(answer));
      }
      // A strong match: the cloud hears of it (the queue keeps a reserve for alarms).
      replica::OutboundEvent e;
      e.client_id = random_uuid();
      e.type = "ban_hit";
      e.occurred_at = format_rfc3339(std::chrono::system_clock::now());
      e.data = {{"bannedVisitorId", (*alarm)["id"]}};
      if (!p.empty()) e.data["plate"] = alarm->value("plate", json());
      self->log.warn("A banned visitor was checked at the gate.",
                     {{"guard_id", who.guard_id}, {"banned_visitor_id", ban_id}});
      self->queue.enqueue(std::move(e), [answer, reply](Result<replica::Enqueued> r) mutable {
        answer["banHitRecorded"] = static_cast<bool>(r);
        reply(ok_json(answer));
      });
    });
  });
}

void LanApi::Impl::ban_list(const httpd::Request& r, httpd::Reply reply) {
  auto serve = [r, reply](std::int64_t version, std::shared_ptr<const std::string> body) {
    const std::string etag = "\"bans-" + std::to_string(version) + "\"";
    httpd::Response res;
    res.headers.emplace_back("ETag", etag);
    res.headers.emplace_back("Cache-Control", "no-cache");
    if (r.header("if-none-match") == etag) {
      res.status = 304;
      res.content_type = "application/json";
      return reply(std::move(res));
    }
    res.shared_body = std::move(body);
    reply(std::move(res));
  };
  with_ban_list([self = shared_from_this(), serve, reply](bool ok) {
    if (!ok)
      return reply(error(503, "database_unavailable",
                         "The box cannot read its lists right now; try again shortly."));
    serve(self->ban_list_body->first, self->ban_list_body->second);
  });
}

// The ban list as served, current with the replica's cursor: read again
// when it changed, and then its photos fetched ahead (guards see them with
// the internet down).
void LanApi::Impl::with_ban_list(std::function<void(bool ok)> done) {
  const auto cursor = reader.cursors()["banned_visitor"];
  if (ban_list_body && ban_list_body->first == cursor) return done(true);
  reader.ban_list([self = shared_from_this(), done](Result<replica::BanList> list) {
    if (self->stopped) return;
    if (!list) return done(false);
    self->ban_photo_urls.clear();
    std::vector<std::string> urls;
    for (const auto& b : list.value().bans) {
      const auto url = b.value("photoUrl", json());
      if (url.is_string() && !url.get<std::string>().empty() && b.value("id", json()).is_string()) {
        self->ban_photo_urls[b["id"].get<std::string>()] = url.get<std::string>();
        urls.push_back(url.get<std::string>());
      }
    }
    self->ban_list_body.emplace(
        list.value().version,
        std::make_shared<const std::string>(
            json{{"version", list.value().version}, {"bans", app_bans(list.value().bans)}}.dump() +
            "\n"));
    if (self->settings.photos) self->settings.photos->prefetch(std::move(urls));
    done(true);
  });
}

// GET /api/lan/guards: who can sign in, for the sign-in screen's buttons
// (ids and display names only; the community's guards work in the booth).
void LanApi::Impl::guard_list(httpd::Reply reply) {
  auto serve = [reply](const std::shared_ptr<const std::string>& body) {
    httpd::Response res;
    res.headers.emplace_back("Cache-Control", "no-cache");
    res.shared_body = body;
    reply(std::move(res));
  };
  const auto cursor = reader.cursors()["user"];
  if (guards_body && guards_body->first == cursor) return serve(guards_body->second);
  reader.guards(200, [self = shared_from_this(), cursor, serve, reply](Result<json> list) {
    if (self->stopped) return;
    if (!list)
      return reply(error(503, "database_unavailable",
                         "The box cannot read its lists right now; try again shortly."));
    self->guards_body.emplace(
        cursor, std::make_shared<const std::string>(json{{"guards", list.value()}}.dump() + "\n"));
    serve(self->guards_body->second);
  });
}

// GET /api/lan/bans/photo?id=<ban id>: the ban's photo, through the box.
void LanApi::Impl::ban_photo(const httpd::Request& r, httpd::Reply reply) {
  if (!settings.photos || r.query.rfind("id=", 0) != 0)
    return reply(error(404, "not_found", "No photo for this ban."));
  const std::string id = r.query.substr(3);
  with_ban_list([self = shared_from_this(), id, reply](bool ok) {
    if (!ok)
      return reply(error(503, "database_unavailable",
                         "The box cannot read its lists right now; try again shortly."));
    auto it = self->ban_photo_urls.find(id);
    if (it == self->ban_photo_urls.end())
      return reply(error(404, "not_found", "No photo for this ban."));
    self->settings.photos->get(it->second, [reply](Result<Photo> photo) {
      if (!photo) {
        const bool later = photo.error().code == Errc::unavailable;
        auto res = error(later ? 503 : 502, later ? "photo_unavailable" : "photo_refused",
                         "The ban's photo was not taken: " + photo.error().message + ".");
        if (later) res.headers.emplace_back("Retry-After", "30");
        return reply(std::move(res));
      }
      httpd::Response res;
      res.content_type = photo.value().content_type;
      res.headers.emplace_back("Cache-Control", "private, max-age=86400");
      res.headers.emplace_back("Content-Security-Policy", "default-src 'none'; sandbox");
      res.shared_body = photo.value().bytes;
      reply(std::move(res));
    });
  });
}

void LanApi::Impl::schedule(const httpd::Request& r, httpd::Reply reply) {
  static const std::regex kDate(R"(^date=(\d{4}-\d{2}-\d{2})$)");
  std::smatch m;
  if (!std::regex_match(r.query, m, kDate)) {
    return reply(error(400, "invalid_date", "Ask for ?date=YYYY-MM-DD."));
  }
  const std::string date = m[1];
  reader.schedule(date, [self = shared_from_this(), date, reply](Result<json> rows) {
    if (self->stopped) return;
    if (!rows) {
      if (rows.error().code == Errc::invalid)
        return reply(error(400, "invalid_date", rows.error().message));
      return reply(error(503, "database_unavailable",
                         "The box cannot read its lists right now; try again shortly."));
    }
    reply(ok_json({{"date", date}, {"authorizations", rows.value()}}));
  });
}

}  // namespace secbox::lan
