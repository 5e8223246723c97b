#pragma once
// The LAN API's inside, shared by the files that implement it by concern:
// api.cpp (the route table, dispatch, metrics, the replica's changes),
// login.cpp (sign-in, its throttles, sessions and their file),
// guard_data.cpp (the replica's reads and the guards' events),
// streams.cpp (the live view and the alarm streams) and files.cpp (the app
// and HLS segments). Not a public header.
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
#include "common/lifetime.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/plates.hpp"
#include "common/prometheus.hpp"
#include "common/time.hpp"
#include "lan/pin.hpp"
#include "lan/static_files.hpp"

namespace secbox::lan {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

inline httpd::Response error(int status, const std::string& code, const std::string& hint) {
  httpd::Response r;
  r.status = status;
  r.body = json{{"error", code}, {"hint", hint}}.dump() + "\n";
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

inline httpd::Response ok_json(const json& body, int status = 200) {
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
inline json app_ban(json ban) {
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

inline json app_bans(const json& bans) {
  json out = json::array();
  if (bans.is_array()) {
    for (const auto& b : bans) out.push_back(app_ban(b));
  }
  return out;
}

// An alarm as the app sees it: its ban's photo from the box.
inline json app_alarm(json alarm) {
  if (auto ban = alarm.find("ban"); alarm.is_object() && ban != alarm.end()) *ban = app_ban(*ban);
  return alarm;
}

// An alarm as the stream and the list carry it: its texts cut (whole UTF-8
// characters, an ellipsis, "truncated": true) so that one message stays a
// few KiB whatever the cloud sent; GET /api/lan/alarms?id=<id> has it whole.
inline json compact_alarm(const json& alarm) {
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
inline json compact_alarms(const json& list, std::size_t budget, bool& more) {
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
inline std::string app_policy(const std::string& named) {
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
inline std::string decoy_for(int n) {
  return "pbkdf2-sha256$" + std::to_string(n) +
         "$c2VjYm94LWRlY295LXNhbHQ=$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
}

// The iterations of a stored hash (pbkdf2-sha256$<n>$…), 0 if unreadable.
inline int iterations_of(const std::string& hash) {
  auto a = hash.find('$');
  auto b = a == std::string::npos ? a : hash.find('$', a + 1);
  if (b == std::string::npos || b - a - 1 > 7) return 0;
  const std::string n = hash.substr(a + 1, b - a - 1);
  return n.find_first_not_of("0123456789") == std::string::npos && !n.empty() ? std::stoi(n) : 0;
}

// Whether a name check is strong enough to raise an alarm: the whole name,
// or two words or more, each a whole word of it ("jose nunez" for "José
// Núñez Soto"; "a" or "jo" are lookups, never alarms). Both normalized.
inline bool strong_name_match(const std::string& query, const std::string& name) {
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
  LoopAffinity affinity;  // the HTTPS server calls in on the loop
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

  // Of the streams `which` picks in `streams` (a map by growing id: the first
  // is the oldest), the oldest once `limit` or more are picked; else end().
  template <class Map, class Which>
  static typename Map::iterator oldest_beyond(Map& streams, Which which, std::size_t limit) {
    auto pick = streams.end();
    std::size_t count = 0;
    for (auto it = streams.begin(); it != streams.end(); ++it) {
      if (!which(it->second)) continue;
      ++count;
      if (pick == streams.end()) pick = it;
    }
    return count >= limit ? pick : streams.end();
  }

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
  void make_room_for_session(const std::string& guard_id);
  std::map<std::uint64_t, Listener> listeners;
  std::uint64_t next_listener = 1;
  std::uint64_t feed_subscription = 0;
  boost::asio::steady_timer ping;
  bool pinging = false;

  static std::string sse(const char* event, const json& data);
  void broadcast(const json& alarm);
  // A stream closed because its phone does not read: said in the log, at
  // most once a minute with the count since.
  std::uint64_t dropped_streams = 0;
  SteadyClock::time_point dropped_logged{};
  void note_dropped_stream();
  void close_streams(const std::string& token_hash);
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

  void persist_sessions();

  // A guard removed from the community, or given a new PIN, is signed out
  // everywhere (also after a restart: the sessions are read before the
  // replica, then checked against it).
  void recheck_sessions();

  std::optional<Session> authenticate(const httpd::Request& r);

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

inline std::string today_local() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

inline httpd::Response queue_error(const Error& e) {
  if (e.code == Errc::invalid) return error(400, "invalid_event", e.message);
  if (e.code == Errc::queue_full) {
    return error(503, "queue_full",
                 "The box holds too many unsent events; it keeps them until the cloud is back.");
  }
  return error(503, "database_unavailable",
               "The entry was NOT saved: the box's database is not answering. Try again.");
}

}  // namespace secbox::lan
