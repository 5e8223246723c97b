#pragma once
// The guard app's API on the LAN (served by httpd::Server), working offline
// from the replica:
//   GET  /healthz                       no auth
//   POST /api/lan/login {guardId, pin}  a session token (5 failures per guard
//                                       or per address in 5 min: 429)
//   GET  /api/lan/guards                no auth: [{id, displayName}] of the
//                                       guards who can sign in (the sign-in
//                                       screen's buttons), 200 at most
//   POST /api/lan/logout
//   GET  /api/lan/ban-list              ETag / If-None-Match → 304
//   GET  /api/lan/schedule?date=YYYY-MM-DD
//   GET  /api/lan/status                tunnel, pairing, queue, freshness
//   POST /api/lan/check {plate?, name?} bans and today's guests that match;
//                                       a ban match queues a ban_hit
//   POST /api/lan/entries               a visitor_entry, 201 once durable;
//                                       the same clientId again: 200, no new event
//   POST /api/lan/notes                 a guard_note, the same way
//   GET  /api/lan/alarms                camera alarms kept on the box
//   GET  /api/lan/alarms/stream         server-sent events: `state` (every
//                                       alarm kept, and the feed's boot id)
//                                       at once, then `alarm` for
//                                       each one raised or changed; a comment
//                                       every ping interval. Closed when the
//                                       session ends, and after 10 min (the
//                                       app reconnects and is sent the state)
//   POST /api/lan/alarms/answer         {alarmId, decision, reason?, clientId}:
//                                       a visitor_entry, 201 once durable
//   GET  /api/lan/alarms/snapshot?id=   the camera's JPEG of the alarm
//   GET  /api/lan/cameras/live?camera=  the camera's live video as one
//                                       streamed fMP4 (Content-Type with its
//                                       codec), for Media Source Extensions:
//                                       404 when it has none yet (HLS then)
//   GET  /api/lan/bans/photo?id=        a ban's photo, fetched and kept by the
//                                       box (lan/ban_photos.hpp): 502 when it
//                                       was refused, 503 to try later
//   GET  /metrics                       Prometheus text: the box's figures from
//                                       the metrics hook, plus HTTP requests by
//                                       route and status; only to the
//                                       configured scrapers (addresses, or a
//                                       bearer token; loopback by default)
//   GET  anything else                  the guard app's files (web dir)
// Every /api/lan/* route but login and guards needs `Authorization: Bearer <token>`.
// Errors are {error, hint} with the right status. Loop thread only; PIN
// checks and file lookups run on the worker pool.
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/blocking.hpp"
#include "common/net.hpp"
#include "alarms/feed.hpp"
#include "httpd/server.hpp"
#include "lan/ban_photos.hpp"
#include "replica/ports.hpp"

namespace secbox::lan {

// Live video for the app's Media Source Extensions player (media::LiveFeed
// behind it, wired by the appliance). Loop thread only.
class LiveVideoSource {
 public:
  struct Viewer {
    std::function<bool(std::string)> write;  // false: gone
    std::function<std::size_t()> waiting;    // bytes given and not yet sent
    std::function<void()> end;               // the feed restarted: close
  };
  virtual ~LiveVideoSource() = default;
  // "video/mp4; codecs=\"avc1.…\"" once the camera has a picture a browser
  // plays; empty: none (yet).
  virtual std::string type(const std::string& camera) = 0;
  // Sends it the init segment and the fragments since the last keyframe,
  // then each new one. 0: no such camera, or the viewer went at once.
  virtual std::uint64_t watch(const std::string& camera, Viewer viewer) = 0;
  virtual void unwatch(const std::string& camera, std::uint64_t id) = 0;
};

struct LanApiSettings {
  std::string web_dir;  // the guard app's built files
  std::chrono::seconds session_lifetime{12 * 3600};
  // Where sessions outlive a restart (0600; token hashes, guard ids and
  // expiry times, never a token). Empty: in memory only.
  std::string sessions_file;
  // Failed logins: at most max_failures checked per address and per guard on
  // an address within the window (429 beyond). A guard with max_failures or
  // more from anywhere is slowed, never locked out: each attempt for it waits
  // guard_slowdown per failure beyond the limit, at most max_guard_slowdown,
  // so its own phone still signs in while someone guesses elsewhere.
  int max_failures = 5;
  std::chrono::seconds failure_window{300};
  std::chrono::milliseconds guard_slowdown{1000};
  std::chrono::milliseconds max_guard_slowdown{10000};
  std::function<std::string()> metrics;  // the box's own figures, Prometheus text
  // Who may read /metrics: clients from these addresses, and any client
  // with `Authorization: Bearer <metrics_token>` (when set). Others: 403.
  AddressList metrics_allow = AddressList::parse("127.0.0.1,::1").value();
  std::string metrics_token;
  // Cameras (media): GET /api/lan/streams lists them; /hls/<camera>/<file>
  // serves their playlists and segments from hls_dir, to a logged-in guard.
  std::function<nlohmann::json()> streams;
  std::string hls_dir;
  // Live video (may be null: HLS only); it outlives the API. Bounded like
  // the alarm streams: a guard's new one closes its oldest beyond
  // live_streams_per_guard (a wall of 16 cameras is 16), a full table takes
  // one from the guard with the most.
  LiveVideoSource* live = nullptr;
  std::size_t live_streams = 48;
  std::size_t live_streams_per_guard = 16;
  std::size_t live_stream_backlog = 4u << 20;  // per stream, before it is closed (the feed skips to
                                               // the next keyframe at 1 MiB)
  // The box's named origins ("https://*.<name>:<port>", cloud-protocol §7.7;
  // "" before a trusted certificate is served): the app's policy lets it
  // reach them, to offer the named address where the phone trusts it.
  std::function<std::string()> named_origins;
  // Ban photos (may be null: bans show none); it outlives the API. Ban
  // lists and alarms carry "photo": "/api/lan/bans/photo?id=<ban id>" (or
  // null), never the cloud's photoUrl.
  BanPhotos* photos = nullptr;
  // Camera alarms (may be null); it outlives the API.
  alarms::AlarmFeed* alarms = nullptr;
  std::chrono::seconds alarm_ping{15};
  std::chrono::seconds alarm_stream_lifetime{600};
  // Bounded so that one guard cannot take the others' places: a new stream
  // closes the oldest of its session, then of its guard; when all are taken,
  // the guard holding the most gives one up.
  std::size_t alarm_streams = 32;  // open at once, in all
  std::size_t alarm_streams_per_session = 2;
  std::size_t alarm_streams_per_guard = 4;
  // Sessions, the same way: a guard's new session replaces its own oldest
  // beyond sessions_per_guard; a full table takes one from the guard with
  // the most.
  std::size_t max_sessions = 1000;
  std::size_t sessions_per_guard = 8;
};

class LanApi {
 public:
  LanApi(BlockingPool& workers, replica::ReplicaReads& reader, replica::EventSink& queue,
         LanApiSettings settings, std::function<nlohmann::json()> status);
  ~LanApi();

  void handle(httpd::Request request, httpd::Reply reply);
  httpd::Handler handler() {
    return [this](httpd::Request r, httpd::Reply reply) { handle(std::move(r), std::move(reply)); };
  }
  // The replica changed: cached bodies are rebuilt on the next request. When
  // the guards changed ("user", or ""), the sessions of a guard who was
  // removed, or whose PIN changed, end.
  void replica_changed(const std::string& entity = "");
  std::size_t sessions() const;
  // Entries of the failed-login tables (by guard id and by address block;
  // each at most 4,096), and PIN checks run (every login not refused with
  // 429 runs one, for a guard the replica does not know too).
  std::size_t login_failure_entries() const;
  // Logins that waited because their guard had failures from elsewhere.
  std::uint64_t slowed_logins() const;
  std::uint64_t pin_checks() const;
  // Reads sessions_file (blocking; before the loop runs): guards stay logged
  // in across a restart or an update. Expired or unreadable entries are dropped.
  void load_sessions();

  // How the gate check compares: plates as common/plates.hpp normalizes them;
  // names without case or accents.
  static std::string normalize_plate(const std::string& plate);
  static std::string normalize_name(const std::string& name);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::lan
