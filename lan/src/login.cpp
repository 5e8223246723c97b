// The LAN API: sign-in (PIN checks on a worker, throttled by guard, address and both), sessions and
// their file.
#include "api_impl.hpp"

namespace secbox::lan {

// Before a session of `guard_id` is added: that guard's oldest goes beyond
// its share, and a full table takes one from the guard with the most.
void LanApi::Impl::make_room_for_session(const std::string& guard_id) {
  auto drop_oldest_of = [this](const std::string& guard) {
    auto pick = sessions.end();
    for (auto it = sessions.begin(); it != sessions.end(); ++it) {
      if (it->second.guard_id == guard &&
          (pick == sessions.end() || it->second.expires < pick->second.expires)) {
        pick = it;
      }
    }
    if (pick != sessions.end()) sessions.erase(pick);
  };
  const auto mine =
      static_cast<std::size_t>(std::count_if(sessions.begin(), sessions.end(), [&](const auto& kv) {
        return kv.second.guard_id == guard_id;
      }));
  if (mine >= settings.sessions_per_guard) drop_oldest_of(guard_id);
  if (sessions.size() >= settings.max_sessions) {
    drop_oldest_of(busiest_guard(sessions, [](const Session& x) { return x.guard_id; }));
  }
}

void LanApi::Impl::persist_sessions() {
  if (settings.sessions_file.empty()) return;
  if (persisting) {
    persist_again = true;
    return;
  }
  persisting = true;
  const auto steady_now = SteadyClock::now();
  const auto wall_now = std::chrono::system_clock::now();
  json list = json::array();
  for (const auto& [hash, s] : sessions) {
    if (s.expires <= steady_now) continue;
    const auto wall = wall_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                     s.expires - steady_now);
    list.push_back({{"tokenSha256", hash},
                    {"guardId", s.guard_id},
                    {"pinTag", s.pin_tag},
                    {"expiresAt", format_rfc3339(wall)}});
  }
  workers.run(
      [path = settings.sessions_file, text = json{{"v", 1}, {"sessions", list}}.dump() + "\n"] {
        return write_file_atomically(path, text, {0600, std::nullopt});
      },
      [self = shared_from_this()](Result<void> written) {
        self->persisting = false;
        if (!written) {
          self->log.warn("The guards' sessions could not be saved; a restart will sign them out.",
                         {{"reason", written.error().message}});
        }
        if (self->persist_again && !self->stopped) {
          self->persist_again = false;
          self->persist_sessions();
        }
      });
}

// A guard removed from the community, or given a new PIN, is signed out
// everywhere (also after a restart: the sessions are read before the
// replica, then checked against it).
void LanApi::Impl::recheck_sessions() {
  std::set<std::string> guards;
  for (const auto& [hash, s] : sessions) guards.insert(s.guard_id);
  for (const auto& id : guards) {
    reader.guard(id, [self = shared_from_this(), id](Result<replica::Guard> g) {
      if (self->stopped) return;
      if (!g && g.error().code != Errc::not_found) return;  // the database is down: decide later
      const std::string tag = g ? sha256_hex(g.value().pin_hash.value_or("")) : std::string();
      std::size_t ended = 0;
      for (auto it = self->sessions.begin(); it != self->sessions.end();) {
        if (it->second.guard_id == id && (!g || it->second.pin_tag != tag)) {
          it = self->sessions.erase(it);
          ++ended;
        } else {
          ++it;
        }
      }
      if (ended == 0) return;
      self->log.info(
          g ? "Signed out a guard whose PIN changed." : "Signed out a guard who was removed.",
          {{"guard_id", id}, {"sessions", ended}});
      self->persist_sessions();
    });
  }
}

std::optional<LanApi::Impl::Session> LanApi::Impl::authenticate(const httpd::Request& r) {
  const std::string auth = r.header("authorization");
  if (auth.rfind("Bearer ", 0) != 0) return std::nullopt;
  auto it = sessions.find(sha256_hex(auth.substr(7)));
  if (it == sessions.end()) return std::nullopt;
  if (SteadyClock::now() >= it->second.expires) {
    sessions.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void LanApi::Impl::login(const httpd::Request& r, httpd::Reply reply) {
  auto body = json::parse(r.body, nullptr, false);
  if (!body.is_object())
    return reply(error(400, "bad_json", "Send {\"guardId\": \"…\", \"pin\": \"…\"} as JSON."));
  auto guard_it = body.find("guardId");
  auto pin_it = body.find("pin");
  if (guard_it == body.end() || !guard_it->is_string() || guard_it->get<std::string>().empty() ||
      guard_it->get<std::string>().size() > 128) {
    return reply(error(400, "invalid_guard_id", "guardId must be the guard's id, as text."));
  }
  if (pin_it == body.end() || !pin_it->is_string() || pin_it->get<std::string>().empty() ||
      pin_it->get<std::string>().size() > 64) {
    return reply(error(400, "invalid_pin", "pin must be text of 1 to 64 characters."));
  }
  const std::string guard_id = guard_it->get<std::string>();
  const std::string pin = pin_it->get<std::string>();
  const std::string address = address_block(r.remote_address);
  // One guard's failures on one address, so that wrong PINs sent from
  // elsewhere never lock that guard out.
  const std::string pair = guard_id + "\n" + address;
  const long wait =
      std::max(by_pair.blocked_for(pair, settings.max_failures, settings.failure_window),
               by_address.blocked_for(address, settings.max_failures, settings.failure_window));
  if (wait > 0) {
    auto res = error(429, "too_many_attempts", "Too many wrong PINs. Wait and try again.");
    res.headers.emplace_back("Retry-After", std::to_string(wait));
    return reply(std::move(res));
  }
  // A guard someone is guessing for (the limit reached from any address):
  // every attempt for it waits first, longer the more failures there were.
  const int guard_failures = by_guard.failures(guard_id, settings.failure_window);
  std::chrono::milliseconds slow{0};
  if (guard_failures >= settings.max_failures) {
    slow = std::min(settings.guard_slowdown * (guard_failures - settings.max_failures + 1),
                    settings.max_guard_slowdown);
  }
  by_pair.begin(pair, settings.failure_window);
  by_address.begin(address, settings.failure_window);
  by_guard.begin(guard_id, settings.failure_window);
  if (slow.count() > 0) {
    ++slowed_logins;
    auto timer = std::make_shared<boost::asio::steady_timer>(workers.loop(), slow);
    timer->async_wait([self = shared_from_this(), timer, guard_id, pin, address, pair,
                       trust = r.trust, reply](boost::system::error_code) {
      if (self->stopped) return;
      self->check_login(guard_id, pin, address, pair, trust, reply);
    });
    return;
  }
  check_login(guard_id, pin, address, pair, r.trust, std::move(reply));
}

void LanApi::Impl::check_login(const std::string& guard_id, const std::string& pin,
                               const std::string& address, const std::string& pair,
                               std::function<void()> trust, httpd::Reply reply) {
  reader.guard(guard_id, [self = shared_from_this(), guard_id, pin, address, pair, trust,
                          reply](Result<replica::Guard> g) {
    const int max = self->settings.max_failures;
    if (self->stopped) return;
    if (!g && g.error().code != Errc::not_found) {
      self->by_guard.release(guard_id);
      self->by_pair.release(pair);
      self->by_address.release(address);
      return reply(error(503, "database_unavailable",
                         "The box cannot read its lists right now; try again shortly."));
    }
    const bool known = g && g.value().pin_hash && !g.value().pin_hash->empty();
    if (known) {
      if (int n = iterations_of(*g.value().pin_hash); n > 0 && n <= 2000000)
        self->decoy_hash = decoy_for(n);
    }
    const std::string hash = known ? *g.value().pin_hash : self->decoy_hash;
    self->workers.run(
        [hash, pin, known, checks = self->pin_checks] {
          ++*checks;
          return verify_pin(hash, pin) && known;
        },
        [self, guard_id, address, pair, trust, reply, g, known, max](bool matched) {
          if (self->stopped) return;
          // The guard's count grows past the limit: it sets the slow-down.
          self->by_guard.end(guard_id, !matched, known, kGuardFailuresKept);
          self->by_pair.end(pair, !matched, known, max);
          // A right PIN clears its guard's failures, not its address's.
          if (matched)
            self->by_address.release(address);
          else
            self->by_address.end(address, true, known, max);
          if (!matched) {
            self->log.info("A guard login failed.", {{"guard_id", guard_id}, {"address", address}});
            return reply(error(401, "wrong_guard_or_pin", "The guard or the PIN is wrong."));
          }
          if (trust) trust();  // the guard's connection, from now on
          const std::string token = random_hex(32);
          self->make_room_for_session(guard_id);
          self->sessions[sha256_hex(token)] =
              Session{guard_id, SteadyClock::now() + self->settings.session_lifetime,
                      sha256_hex(g.value().pin_hash.value_or(""))};
          self->persist_sessions();
          self->log.info("A guard logged in.", {{"guard_id", guard_id}});
          reply(ok_json({{"token", token},
                         {"expiresIn", self->settings.session_lifetime.count()},
                         {"guard", {{"id", guard_id}, {"displayName", g.value().display_name}}}}));
        });
  });
}

void LanApi::Impl::logout(const httpd::Request& r, httpd::Reply reply) {
  const std::string token_hash = sha256_hex(r.header("authorization").substr(7));
  sessions.erase(token_hash);
  close_streams(token_hash);
  persist_sessions();
  reply(ok_json({{"status", "logged_out"}}));
}

void LanApi::load_sessions() {
  auto& i = *impl_;
  if (i.settings.sessions_file.empty()) return;
  auto text = read_file(i.settings.sessions_file, 1 << 20);
  if (!text) return;  // none yet
  const auto wall_now = std::chrono::system_clock::now();
  const auto steady_now = SteadyClock::now();
  std::size_t kept = 0, dropped = 0;
  try {
    const auto doc = json::parse(text.value());
    for (const auto& s : doc.at("sessions")) {
      const std::string hash = s.at("tokenSha256").get<std::string>();
      const std::string guard = s.at("guardId").get<std::string>();
      const auto expires = parse_rfc3339(s.at("expiresAt").get<std::string>());
      const std::string pin_tag = s.value("pinTag", "");
      // Never longer than a lifetime from now, whatever the file or the clock says.
      if (hash.size() != 64 || guard.empty() || !expires || *expires <= wall_now ||
          *expires - wall_now > i.settings.session_lifetime) {
        ++dropped;
        continue;
      }
      i.sessions[hash] = Impl::Session{
          guard,
          steady_now + std::chrono::duration_cast<SteadyClock::duration>(*expires - wall_now),
          pin_tag};
      ++kept;
    }
  } catch (const json::exception& e) {
    i.log.warn("The saved guard sessions are unreadable; guards log in again.",
               {{"reason", e.what()}});
    return;
  }
  i.log.info("Guard sessions restored.", {{"sessions", kept}, {"expired_or_invalid", dropped}});
}

std::size_t LanApi::sessions() const { return impl_->sessions.size(); }

std::size_t LanApi::login_failure_entries() const {
  return impl_->by_guard.size() + impl_->by_address.size() + impl_->by_pair.size();
}

std::uint64_t LanApi::slowed_logins() const { return impl_->slowed_logins; }

std::uint64_t LanApi::pin_checks() const { return impl_->pin_checks->load(); }

}  // namespace secbox::lan
