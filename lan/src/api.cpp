#include "lan/api.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <functional>
#include <atomic>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>

#include "common/atomic_file.hpp"
#include "common/hex.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/plates.hpp"
#include "common/prometheus.hpp"
#include "common/time.hpp"
#include "lan/pin.hpp"
#include "lan/static_files.hpp"

namespace secbox::lan {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

httpd::Response error(int status, const std::string& code, const std::string& hint) {
  httpd::Response r;
  r.status = status;
  r.body = json{{"error", code}, {"hint", hint}}.dump() + "\n";
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

httpd::Response ok_json(const json& body, int status = 200) {
  httpd::Response r;
  r.status = status;
  r.body = body.dump() + "\n";
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// Failed logins per key (a guard id, an address block) within a sliding
// window. Attempts still being checked count as failures until they end, so
// that 40 concurrent wrong PINs are 5 checked and 35 refused, not 40 checked.
// The table is bounded: when full, expired entries go first, then those of
// guard ids the replica does not know, then the oldest; a key's queue holds
// at most `max` failures.
class FailureLog {
 public:
  explicit FailureLog(std::size_t max_keys) : max_keys_(max_keys) {}

  // Seconds until the key may try again, 0 when it may now.
  long blocked_for(const std::string& key, int max, std::chrono::seconds window) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return 0;
    auto& e = it->second;
    prune(e, window);
    if (static_cast<int>(e.failures.size()) + e.in_flight < max) return 0;
    if (e.failures.empty()) return 1;  // only attempts being checked: soon
    return std::max<long>(1, std::chrono::duration_cast<std::chrono::seconds>(
                                 e.failures.front() + window - SteadyClock::now())
                                 .count());
  }
  // An attempt starts: it counts until end().
  void begin(const std::string& key, std::chrono::seconds window) {
    ++entry(key, window).in_flight;
  }
  // It ended: a failure is kept (known: the key is a real guard, kept
  // longest when the table is full); a success clears the key.
  void end(const std::string& key, bool failed, bool known, int max) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    auto& e = it->second;
    if (e.in_flight > 0) --e.in_flight;
    e.known = e.known || known;
    if (!failed) {
      if (e.in_flight == 0)
        entries_.erase(it);
      else
        e.failures.clear();
      return;
    }
    e.failures.push_back(SteadyClock::now());
    while (static_cast<int>(e.failures.size()) > max) e.failures.pop_front();
  }
  // An attempt ended without a verdict on the key: it no longer counts.
  void release(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    if (it->second.in_flight > 0) --it->second.in_flight;
    if (it->second.in_flight == 0 && it->second.failures.empty()) entries_.erase(it);
  }
  std::size_t size() const { return entries_.size(); }
  // Failures of the key within the window (attempts being checked not counted).
  int failures(const std::string& key, std::chrono::seconds window) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return 0;
    prune(it->second, window);
    return static_cast<int>(it->second.failures.size());
  }

 private:
  struct Entry {
    std::deque<SteadyClock::time_point> failures;
    int in_flight = 0;
    bool known = false;
    SteadyClock::time_point created;
  };
  static void prune(Entry& e, std::chrono::seconds window) {
    const auto now = SteadyClock::now();
    while (!e.failures.empty() && now - e.failures.front() >= window) e.failures.pop_front();
  }
  Entry& entry(const std::string& key, std::chrono::seconds window) {
    if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    if (entries_.size() >= max_keys_) evict(window);
    auto& e = entries_[key];
    e.created = SteadyClock::now();
    return e;
  }
  void evict(std::chrono::seconds window) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      prune(it->second, window);
      it = it->second.failures.empty() && it->second.in_flight == 0 ? entries_.erase(it)
                                                                    : std::next(it);
    }
    while (entries_.size() >= max_keys_) {
      auto victim = entries_.end();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->second.in_flight > 0) continue;
        if (victim == entries_.end() || (victim->second.known && !it->second.known) ||
            (victim->second.known == it->second.known &&
             it->second.created < victim->second.created)) {
          victim = it;
        }
      }
      if (victim == entries_.end())
        return;  // every entry is in flight: bounded by the connection cap
      entries_.erase(victim);
    }
  }

  std::size_t max_keys_;
  std::unordered_map<std::string, Entry> entries_;
};

// A ban as the app sees it: its photo from the box's own origin
// (GET /api/lan/bans/photo?id=), never the address the cloud wrote.
json app_ban(json ban) {
  if (!ban.is_object()) return ban;
  auto url = ban.find("photoUrl");
  const bool has_photo = url != ban.end() && url->is_string() && !url->get<std::string>().empty();
  const auto id = ban.find("id");
  if (url != ban.end()) ban.erase(url);
  ban["photo"] = has_photo && id != ban.end() && id->is_string()
                     ? json("/api/lan/bans/photo?id=" + id->get<std::string>())
                     : json(nullptr);
  return ban;
}

json app_bans(const json& bans) {
  json out = json::array();
  if (bans.is_array()) {
    for (const auto& b : bans) out.push_back(app_ban(b));
  }
  return out;
}

// An alarm as the app sees it: its ban's photo from the box.
json app_alarm(json alarm) {
  if (auto ban = alarm.find("ban"); alarm.is_object() && ban != alarm.end()) *ban = app_ban(*ban);
  return alarm;
}

// An alarm as the stream and the list carry it: its texts cut (whole UTF-8
// characters, an ellipsis, "truncated": true) so that one message stays a
// few KiB whatever the cloud sent; GET /api/lan/alarms?id=<id> has it whole.
json compact_alarm(const json& alarm) {
  json out = app_alarm(alarm);
  bool cut = false;
  auto clip = [&cut](json& obj, const char* key, std::size_t max) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_string()) return;
    auto& text = it->get_ref<std::string&>();
    if (text.size() <= max) return;
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    text = text.substr(0, n) + "\u2026";
    cut = true;
  };
  if (!out.is_object()) return out;
  clip(out, "camera", 64);
  clip(out, "read", 64);
  clip(out, "frigateEventId", 128);
  if (auto ban = out.find("ban"); ban != out.end() && ban->is_object()) {
    clip(*ban, "fullName", 200);
    clip(*ban, "plate", 32);
    clip(*ban, "reason", 200);
  }
  if (auto answer = out.find("answer"); answer != out.end() && answer->is_object())
    clip(*answer, "reason", 200);
  if (cut) out["truncated"] = true;
  return out;
}

// The alarms a stream's catch-up carries: the newest that fit in `budget`
// bytes, oldest first; `more` when older ones were left for the list.
json compact_alarms(const json& list, std::size_t budget, bool& more) {
  json out = json::array();
  more = false;
  if (!list.is_array()) return out;
  std::vector<json> kept;
  std::size_t used = 0;
  for (auto it = list.rbegin(); it != list.rend(); ++it) {
    json a = compact_alarm(*it);
    const std::size_t size = a.dump(-1, ' ', false, json::error_handler_t::replace).size();
    if (used + size > budget) {
      more = true;
      break;
    }
    used += size;
    kept.push_back(std::move(a));
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) out.push_back(std::move(*it));
  return out;
}

// A guard's failures kept (from every address): the slow-down grows with them.
constexpr int kGuardFailuresKept = 64;
// The guard app's Content-Security-Policy (docs/lan.md). `named`: the box's
// named origins (https://*.<name>:<port>, §7.7), which the app may reach to
// find out whether the phone resolves and trusts them.
std::string app_policy(const std::string& named) {
  return "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'" +
         (named.empty() ? std::string() : " " + named) +
         "; worker-src 'self' blob:; img-src 'self' blob: data:; media-src 'self' blob:; "
         "manifest-src 'self'; "
         "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
}

// The alarms a stream's catch-up carries, in bytes: well under the backlog a
// stream may have waiting (httpd::Settings::stream_backlog, 256 KiB).
constexpr std::size_t kStateBudget = 96 * 1024;

// A well-formed hash that no PIN matches, costing n iterations to check.
std::string decoy_for(int n) {
  return "pbkdf2-sha256$" + std::to_string(n) +
         "$c2VjYm94LWRlY295LXNhbHQ=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
}

// The iterations of a stored hash (pbkdf2-sha256$<n>$…), 0 if unreadable.
int iterations_of(const std::string& hash) {
  auto a = hash.find('$');
  auto b = a == std::string::npos ? a : hash.find('$', a + 1);
  if (b == std::string::npos || b - a - 1 > 7) return 0;
  const std::string n = hash.substr(a + 1, b - a - 1);
  return n.find_first_not_of("0123456789") == std::string::npos && !n.empty() ? std::stoi(n) : 0;
}

// Whether a name check is strong enough to raise an alarm: the whole name,
// or two words or more, each a whole word of it ("jose nunez" for "José
// Núñez Soto"; "a" or "jo" are lookups, never alarms). Both normalized.
bool strong_name_match(const std::string& query, const std::string& name) {
  if (query == name) return true;
  std::vector<std::string> words;
  std::istringstream in(name);
  for (std::string w; in >> w;) words.push_back(w);
  std::istringstream q(query);
  int matched = 0;
  for (std::string w; q >> w; ++matched) {
    if (std::find(words.begin(), words.end(), w) == words.end()) return false;
  }
  return matched >= 2;
}

// Alarms one guard may raise: one per ban per 10 minutes (the same car
// checked again is the same alarm), 20 an hour in all. Bounded: old entries
// are dropped as new ones come, and guards without any go.
class AlarmBudget {
 public:
  static constexpr auto kRepeat = std::chrono::minutes(10);
  static constexpr auto kWindow = std::chrono::hours(1);
  static constexpr std::size_t kPerWindow = 20;
  static constexpr std::size_t kGuards = 4096;

  // "raised", "repeat" or "limit".
  const char* take(const std::string& guard, const std::string& ban, SteadyClock::time_point now) {
    for (auto it = guards_.begin(); it != guards_.end();) {
      prune(it->second, now);
      it = it->second.raised.empty() ? guards_.erase(it) : std::next(it);
    }
    if (guards_.size() >= kGuards && !guards_.count(guard)) return "limit";
    auto& g = guards_[guard];
    for (const auto& [at, id] : g.raised) {
      if (id == ban && now - at < kRepeat) return "repeat";
    }
    if (g.raised.size() >= kPerWindow) return "limit";
    g.raised.emplace_back(now, ban);
    return "raised";
  }

 private:
  struct Guard {
    std::deque<std::pair<SteadyClock::time_point, std::string>> raised;  // oldest first
  };
  static void prune(Guard& g, SteadyClock::time_point now) {
    while (!g.raised.empty() && now - g.raised.front().first >= kWindow) g.raised.pop_front();
  }
  std::map<std::string, Guard> guards_;
};

}  // namespace

struct LanApi::Impl : std::enable_shared_from_this<LanApi::Impl> {
  Impl(BlockingPool& w, replica::ReplicaReads& r, replica::EventSink& q, LanApiSettings s,
       std::function<json()> st)
      : workers(w), reader(r), queue(q), settings(std::move(s)), status(std::move(st)),
        ping(w.loop()) {}

  struct Session {
    std::string guard_id;
    SteadyClock::time_point expires;
    std::string pin_tag;  // SHA-256 of the PIN hash at login: a new PIN ends the session
  };

  BlockingPool& workers;
  replica::ReplicaReads& reader;
  replica::EventSink& queue;
  LanApiSettings settings;
  std::function<json()> status;
  log::Logger log{"lan"};
  std::map<std::string, Session>
      sessions;  // by SHA-256 of the token: the token itself is never kept
  // Failed logins: by address and by guard on an address (limits), by guard
  // from anywhere (a slow-down, never a lockout).
  FailureLog by_guard{4096}, by_address{4096}, by_pair{4096};
  std::uint64_t slowed_logins = 0;
  AlarmBudget alarms;
  // An unknown guard, or one without a PIN, is checked against this hash so
  // that it costs what a known one does (guard ids cannot be told apart by
  // time); its iterations follow the last real hash seen.
  std::string decoy_hash = decoy_for(100000);
  std::shared_ptr<std::atomic<std::uint64_t>> pin_checks =
      std::make_shared<std::atomic<std::uint64_t>>(0);
  // The ban list as served: rebuilt when the replica changes.
  std::optional<std::pair<std::int64_t, std::shared_ptr<const std::string>>> ban_list_body;
  std::unordered_map<std::string, std::string> ban_photo_urls;
  // The sign-in screen's guards, as served: rebuilt when the replica changes.
  std::optional<std::pair<std::int64_t, std::shared_ptr<const std::string>>>
      guards_body;  // ban id → the cloud's photo URL, with the body
  boost::asio::steady_timer prefetch_timer{workers.loop()};
  bool prefetch_armed = false;
  bool stopped = false;
  std::map<std::pair<std::string, int>, std::uint64_t> requests;  // (route, status) → count

  // The alarm streams: by id, each with the session (token hash) it belongs to.
  struct Listener {
    std::shared_ptr<httpd::ResponseStream> stream;
    std::string token_hash;
    SteadyClock::time_point opened;
    std::string guard_id;
  };

  // The key (a guard id) holding the most entries of `items`, by `guard_of`.
  template <class Map, class GuardOf>
  static std::string busiest_guard(const Map& items, GuardOf guard_of) {
    std::map<std::string, std::size_t> counts;
    for (const auto& kv : items) ++counts[guard_of(kv.second)];
    std::string best;
    std::size_t most = 0;
    for (const auto& [g, n] : counts) {
      if (n > most) best = g, most = n;
    }
    return best;
  }

  // Before a session of `guard_id` is added: that guard's oldest goes beyond
  // its share, and a full table takes one from the guard with the most.
  void make_room_for_session(const std::string& guard_id) {
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
    const auto mine = static_cast<std::size_t>(
        std::count_if(sessions.begin(), sessions.end(),
                      [&](const auto& kv) { return kv.second.guard_id == guard_id; }));
    if (mine >= settings.sessions_per_guard) drop_oldest_of(guard_id);
    if (sessions.size() >= settings.max_sessions) {
      drop_oldest_of(busiest_guard(sessions, [](const Session& x) { return x.guard_id; }));
    }
  }
  std::map<std::uint64_t, Listener> listeners;
  std::uint64_t next_listener = 1;
  std::uint64_t feed_subscription = 0;
  boost::asio::steady_timer ping;
  bool pinging = false;

  static std::string sse(const char* event, const json& data) {
    return std::string("event: ") + event +
           "\ndata: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
  }
  void broadcast(const json& alarm) {
    const std::string chunk = sse("alarm", compact_alarm(alarm));
    auto copy = listeners;  // a failed write closes and erases
    for (auto& [id, l] : copy) {
      if (!l.stream->write(chunk)) note_dropped_stream();
    }
  }
  // A stream closed because its phone does not read: said in the log, at
  // most once a minute with the count since.
  std::uint64_t dropped_streams = 0;
  SteadyClock::time_point dropped_logged{};
  void note_dropped_stream() {
    ++dropped_streams;
    const auto now = SteadyClock::now();
    if (dropped_logged != SteadyClock::time_point{} &&
        now - dropped_logged < std::chrono::minutes(1))
      return;
    dropped_logged = now;
    log.warn("An alarm stream was closed: its phone does not read what the box sends.",
             {{"dropped_since_start", static_cast<double>(dropped_streams)}});
  }
  void close_streams(const std::string& token_hash) {
    auto copy = listeners;
    for (auto& [id, l] : copy) {
      if (token_hash.empty() || l.token_hash == token_hash) l.stream->close();
    }
    auto live = viewers;
    for (auto& [id, v] : live) {
      if (token_hash.empty() || v.token_hash == token_hash) v.stream->close();
    }
  }
  // Live video streams: by id, with their session and camera.
  struct LiveListener {
    std::shared_ptr<httpd::ResponseStream> stream;
    std::string token_hash;
    std::string guard_id;
    std::string camera;
    std::uint64_t feed_id = 0;
  };
  std::map<std::uint64_t, LiveListener> viewers;
  std::uint64_t next_viewer = 1;
  void live_video(const httpd::Request& r, httpd::Reply reply);
  void alarm_stream(const httpd::Request& r, httpd::Reply reply);
  void answer_alarm(const Session& who, const httpd::Request& r, httpd::Reply reply);
  void schedule_ping();

  // sessions_file: one write in flight at a time, the newest state last.
  bool persisting = false;
  bool persist_again = false;

  void persist_sessions() {
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
  void recheck_sessions() {
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

  std::optional<Session> authenticate(const httpd::Request& r) {
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

  void login(const httpd::Request& r, httpd::Reply reply);
  void check_login(const std::string& guard_id, const std::string& pin, const std::string& address,
                   const std::string& pair, std::function<void()> trust, httpd::Reply reply);
  void ban_list(const httpd::Request& r, httpd::Reply reply);
  void with_ban_list(std::function<void(bool ok)> done);
  void guard_list(httpd::Reply reply);
  void ban_photo(const httpd::Request& r, httpd::Reply reply);
  void hls_file(const httpd::Request& r, httpd::Reply reply);
  void schedule(const httpd::Request& r, httpd::Reply reply);
  void static_file(const httpd::Request& r, httpd::Reply reply);
  void metrics(const httpd::Request& r, httpd::Reply reply);
  void logout(const httpd::Request& r, httpd::Reply reply);
  void alarm_list(const httpd::Request& r, httpd::Reply reply);
  void alarm_snapshot(const httpd::Request& r, httpd::Reply reply);
  void record(const std::string& type, const Session& who, const httpd::Request& r,
              httpd::Reply reply);
  void check(const Session& who, const httpd::Request& r, httpd::Reply reply);
};

std::string today_local() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

httpd::Response queue_error(const Error& e) {
  if (e.code == Errc::invalid) return error(400, "invalid_event", e.message);
  if (e.code == Errc::queue_full) {
    return error(503, "queue_full",
                 "The box holds too many unsent events; it keeps them until the cloud is back.");
  }
  return error(503, "database_unavailable",
               "The entry was NOT saved: the box's database is not answering. Try again.");
}

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

// Resolved and read on a worker: the loop never touches the disk.
void LanApi::Impl::static_file(const httpd::Request& r, httpd::Reply reply) {
  struct Loaded {
    Result<StaticFile> file;
    Result<std::string> content = std::string();
  };
  workers.run(
      [dir = settings.web_dir, path = r.path] {
        Loaded l{resolve_static(dir, path)};
        if (l.file) l.content = read_file(l.file.value().path, 8 << 20);
        return l;
      },
      [reply, named = settings.named_origins ? settings.named_origins() : std::string()](Loaded l) {
        if (!l.file) {
          return reply(l.file.error().code == Errc::invalid
                           ? error(400, "bad_path", l.file.error().message)
                           : error(404, "not_found", "No such page."));
        }
        if (!l.content) return reply(error(404, "not_found", "No such page."));
        httpd::Response res;
        res.content_type = l.file.value().content_type;
        res.body = std::move(l.content).value();
        res.headers.emplace_back("Cache-Control", l.file.value().cache_control);
        // The app runs only its own code: scripts, styles, workers and
        // requests from the box (and its named origins); pictures from the
        // box (snapshots and ban photos are blob: URLs); video through
        // hls.js (blob:).
        res.headers.emplace_back("Content-Security-Policy",
                                 app_policy(named));  // with the server's nosniff, no-referrer
        reply(std::move(res));
      });
}

// /hls/<camera>/index.m3u8 or /hls/<camera>/seg-<n>.ts, nothing else: the
// names are checked whole, so no path can leave the camera's folder.
void LanApi::Impl::hls_file(const httpd::Request& r, httpd::Reply reply) {
  static const std::regex kPath(
      R"(^/hls/([a-z0-9][a-z0-9_-]{0,31})/(index\.m3u8|seg-[0-9]{1,20}\.ts)$)");
  std::smatch m;
  if (settings.hls_dir.empty() || !std::regex_match(r.path, m, kPath)) {
    return reply(error(404, "not_found", "No such stream file."));
  }
  const bool playlist = m[2] == "index.m3u8";
  workers.run([path = settings.hls_dir + "/" + m[1].str() + "/" +
                      m[2].str()] { return read_file(path, 16 << 20); },
              [reply, playlist](Result<std::string> content) {
                if (!content)
                  return reply(
                      error(404, "not_found", "No such stream file (the camera may be starting)."));
                httpd::Response res;
                res.content_type = playlist ? "application/vnd.apple.mpegurl" : "video/mp2t";
                // The playlist changes every segment; a segment never changes.
                res.headers.emplace_back("Cache-Control",
                                         playlist ? "no-cache, no-store" : "private, max-age=60");
                res.body = std::move(content).value();
                reply(std::move(res));
              });
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
    auto close_oldest_of = [&](const std::string& guard) {
      for (auto& [id, v] : self->viewers) {
        if (v.guard_id != guard) continue;
        auto closing = v.stream;
        closing->close();  // its on_closed erases it
        return;
      }
    };
    const auto mine = static_cast<std::size_t>(
        std::count_if(self->viewers.begin(), self->viewers.end(),
                      [&](const auto& kv) { return kv.second.guard_id == guard_id; }));
    if (mine >= self->settings.live_streams_per_guard) close_oldest_of(guard_id);
    if (self->viewers.size() >= self->settings.live_streams) {
      close_oldest_of(
          busiest_guard(self->viewers, [](const LiveListener& v) { return v.guard_id; }));
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
      auto pick = self->listeners.end();
      std::size_t count = 0;
      for (auto it = self->listeners.begin(); it != self->listeners.end(); ++it) {
        if (!which(it->second)) continue;
        ++count;
        if (pick == self->listeners.end()) pick = it;  // ids grow: the first is the oldest
      }
      if (count < limit || pick == self->listeners.end()) return;
      auto closing = pick->second.stream;
      self->listeners.erase(pick);
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

void LanApi::Impl::logout(const httpd::Request& r, httpd::Reply reply) {
  const std::string token_hash = sha256_hex(r.header("authorization").substr(7));
  sessions.erase(token_hash);
  close_streams(token_hash);
  persist_sessions();
  reply(ok_json({{"status", "logged_out"}}));
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

void LanApi::handle(httpd::Request r, httpd::Reply reply) {
  auto& i = *impl_;
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
