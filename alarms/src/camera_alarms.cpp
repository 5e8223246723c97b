#include "alarms/camera_alarms.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <regex>
#include <unordered_set>

#include <boost/asio/steady_timer.hpp>

#include "common/lifetime.hpp"
#include "common/http_client.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/plates.hpp"
#include "common/time.hpp"

namespace secbox::alarms {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kPendingLimit = 256;  // sightings waiting for the ban list
constexpr std::size_t kRaisedLimit = 4096;  // (event, ban) pairs remembered as raised
constexpr std::size_t kSnapshotsKept = 20;  // the newest alarms keep their snapshot
constexpr std::size_t kReasonLimit = 500;

std::string text(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The better of two plate matches.
int rank(PlateMatch m) {
  switch (m) {
    case PlateMatch::exact:
      return 3;
    case PlateMatch::confusion:
      return 2;
    case PlateMatch::misread:
      return 1;
    case PlateMatch::none:
      break;
  }
  return 0;
}

struct Alarm {
  std::string id;  // the ban_hit's clientId
  std::string camera, event_id, source, read, match, raised_at;
  double score = 0;
  json ban;
  SteadyClock::time_point raised;
  std::shared_ptr<const std::string> snapshot;
  json answer;  // null until a guard answers

  json view() const {
    return {{"id", id},
            {"camera", camera},
            {"frigateEventId", event_id},
            {"source", source},
            {"read", read},
            {"score", score},
            {"match", match},
            {"raisedAt", raised_at},
            {"ban", ban},
            {"hasSnapshot", snapshot != nullptr},
            {"answer", answer}};
  }
};

// Text cut to at most `max` bytes on a UTF-8 character's boundary, an
// ellipsis marking the cut.
std::string clipped(std::string s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s + "\u2026";
}

// A ban as matching needs it: the replica's list kept this small (a large
// community's list is tens of thousands), not as JSON. Its texts are cut
// (the name at 512 bytes, the reason at 4 KiB; the ban list has them whole),
// since each alarm kept holds a copy: 200 alarms of a ban whose reason is
// 300 KB held 60 MB.
struct Ban {
  std::string id, plate, full_name, reason;
  std::optional<std::string> photo_url;

  static Ban from(const json& b) {
    Ban out{text(b, "id"), text(b, "plate"), clipped(text(b, "fullName"), 512),
            clipped(text(b, "reason"), 4096), std::nullopt};
    if (auto it = b.find("photoUrl");
        it != b.end() && it->is_string() && it->get<std::string>().size() <= 2048) {
      out.photo_url =
          it->get<std::string>();  // longer: no photo the box would fetch (lan/ban_photos.hpp)
    }
    return out;
  }
  json view() const {
    return {{"id", id},
            {"fullName", full_name},
            {"plate", plate.empty() ? json() : json(plate)},
            {"reason", reason},
            {"photoUrl", photo_url ? json(*photo_url) : json()}};
  }
};

// Keys remembered, the oldest forgotten first beyond `limit`.
class RecentKeys {
 public:
  explicit RecentKeys(std::size_t limit) : limit_(limit) {}
  // False when the key was there already.
  bool insert(std::string key) {
    if (!keys_.insert(key).second) return false;
    order_.push_back(std::move(key));
    if (order_.size() > limit_) {
      keys_.erase(order_.front());
      order_.pop_front();
    }
    return true;
  }
  void clear() {
    keys_.clear();
    order_.clear();
  }

 private:
  std::size_t limit_;
  std::deque<std::string> order_;
  std::unordered_set<std::string> keys_;
};

struct Hit {
  Ban ban;
  std::string source, read, match;
  double score = 0;
  int strength = 0;  // a name 4, then rank()
};

}  // namespace

struct CameraAlarms::Impl : std::enable_shared_from_this<Impl> {
  Impl(BlockingPool& w, replica::ReplicaReads& r, replica::EventSink& e, AlarmSettings s)
      : workers(w), reads(r), events(e), settings(std::move(s)), retry(w.loop()) {}

  BlockingPool& workers;
  replica::ReplicaReads& reads;
  replica::EventSink& events;
  AlarmSettings settings;
  boost::asio::steady_timer retry;
  log::Logger log{"alarms"};
  LoopAffinity affinity;
  bool stopped = false;
  const std::string boot = random_uuid();

  std::optional<std::vector<Ban>> bans;  // the active bans, cached until they change
  bool reading = false;
  std::uint64_t bans_generation = 0;
  std::deque<Sighting> pending;

  RecentKeys raised{kRaisedLimit};  // event id + ban id
  // Reads matched already against the current bans: an event in progress is
  // reported every second with the same read, and a large community's list
  // is not walked on the loop again for it.
  RecentKeys matched{kRaisedLimit};
  std::uint64_t raised_count = 0;

  std::deque<Alarm> alarms;
  std::map<std::uint64_t, std::function<void(const json&)>> listeners;
  std::uint64_t next_listener = 1;

  void seen(Sighting s) {
    if (s.plate.empty() && s.sub_label.empty()) return;
    if (bans) {
      if (!matched.insert(read_key(s))) return;
      return match(s);
    }
    if (pending.size() >= kPendingLimit) pending.pop_front();
    pending.push_back(std::move(s));
    read_bans();
  }

  void read_bans() {
    if (reading) return;
    reading = true;
    reads.ban_list(
        [self = shared_from_this(), generation = bans_generation](Result<replica::BanList> list) {
          self->reading = false;
          if (self->stopped) return;
          if (!list) {
            self->log.error(
                "Cannot read the ban list to match what the cameras see; trying again in 2 s.",
                {{"reason", list.error().message}});
            self->retry.expires_after(std::chrono::seconds(2));
            self->retry.async_wait([self](boost::system::error_code ec) {
              if (!ec && !self->stopped && !self->bans) self->read_bans();
            });
            return;
          }
          if (generation != self->bans_generation) return self->read_bans();  // changed meanwhile
          std::vector<Ban> compact;
          compact.reserve(list.value().bans.size());
          for (const auto& b : list.value().bans) {
            if (auto ban = Ban::from(b); !ban.id.empty()) compact.push_back(std::move(ban));
          }
          self->bans = std::move(compact);
          auto waiting = std::move(self->pending);
          self->pending.clear();
          for (auto& s : waiting) {
            if (self->matched.insert(self->read_key(s))) self->match(s);
          }
        });
  }

  std::vector<Hit> hits(const Sighting& s) const {
    std::vector<Hit> out;
    for (const auto& ban : *bans) {
      if (!s.sub_label.empty() && s.sub_label == ban.id &&
          s.sub_label_score >= settings.min_score) {
        out.push_back({ban, s.label == "person" ? "face" : "plate", s.sub_label, "name",
                       s.sub_label_score, 4});
        continue;
      }
      if (s.plate.empty() || ban.plate.empty() || s.plate_score < settings.min_score) continue;
      const PlateMatch m = match_plate(s.plate, ban.plate);
      if (m != PlateMatch::none)
        out.push_back({ban, "plate", s.plate, wire_name(m), s.plate_score, rank(m)});
    }
    // A read that matches one ban exactly and another with a misread alarms for the exact one.
    int best = 0;
    for (const auto& h : out) best = std::max(best, h.strength);
    out.erase(
        std::remove_if(out.begin(), out.end(), [&](const Hit& h) { return h.strength < best; }),
        out.end());
    return out;
  }

  // What decides a match: the event, what was read, and whether each read
  // reaches the minimum score.
  std::string read_key(const Sighting& s) const {
    return s.event_id + "\n" + s.plate + "\n" + s.sub_label + "\n" +
           (s.plate_score >= settings.min_score ? "1" : "0") +
           (s.sub_label_score >= settings.min_score ? "1" : "0");
  }

  void match(const Sighting& s) {
    for (auto& hit : hits(s)) {
      if (!raised.insert(s.event_id + "\n" + hit.ban.id)) continue;
      raise(s, std::move(hit));
    }
  }

  void raise(const Sighting& s, Hit hit) {
    Alarm a;
    a.id = name_uuid("camera-ban-hit:" + s.event_id + ":" + hit.ban.id);
    a.camera = s.camera;
    a.event_id = s.event_id;
    a.source = hit.source;
    a.read = hit.read;
    a.match = hit.match;
    a.score = hit.score;
    a.raised_at = format_rfc3339(std::chrono::system_clock::now());
    a.raised = SteadyClock::now();
    a.ban = hit.ban.view();
    replica::OutboundEvent e;
    e.client_id = a.id;
    e.type = "ban_hit";
    e.occurred_at = a.raised_at;
    e.data = {{"bannedVisitorId", a.ban["id"]}, {"camera", a.camera}, {"source", "camera"},
              {"frigateEventId", a.event_id},   {"read", a.read},     {"score", a.score}};
    if (a.ban["plate"].is_string()) e.data["plate"] = a.ban["plate"];
    log.warn("A camera saw a banned visitor.", {{"camera", a.camera},
                                                {"frigate_event_id", a.event_id},
                                                {"banned_visitor_id", text(a.ban, "id")},
                                                {"match", a.match},
                                                {"score", a.score}});
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const bool stale =
        s.ended_at && now - *s.ended_at > static_cast<double>(settings.stale_after.count());
    events.enqueue(std::move(e), [self = shared_from_this(), a = std::move(a),
                                  stale](Result<replica::Enqueued> r) mutable {
      if (self->stopped) return;
      if (stale) {
        self->log.info(
            "A banned visitor seen by a camera minutes ago (read after a gap): recorded for the "
            "cloud, "
            "no alarm.",
            {{"alarm_id", a.id}, {"camera", a.camera}});
        return;
      }
      if (r && r.value().duplicate) {
        // Raised before a restart: the guards saw it then.
        self->log.info("This camera alarm was raised before; not shown again.",
                       {{"alarm_id", a.id}});
        return;
      }
      if (!r) {
        self->log.error(
            "A camera alarm could not be queued for the cloud; the guards see it anyway.",
            {{"alarm_id", a.id}, {"reason", r.error().message}});
      }
      self->add(std::move(a));
    });
  }

  void add(Alarm a) {
    ++raised_count;
    const std::string id = a.id;
    const std::string camera = a.camera;
    alarms.push_back(std::move(a));
    prune();
    notify(alarms.back());
    fetch_snapshot(id, camera);
  }

  void prune() {
    const auto now = SteadyClock::now();
    while (!alarms.empty() &&
           (alarms.size() > settings.keep || now - alarms.front().raised > settings.keep_for)) {
      alarms.pop_front();
    }
    for (std::size_t i = 0; i + kSnapshotsKept < alarms.size(); ++i) alarms[i].snapshot.reset();
  }

  Alarm* find(const std::string& id) {
    for (auto& a : alarms) {
      if (a.id == id) return &a;
    }
    return nullptr;
  }

  void notify(const Alarm& a) {
    const json v = a.view();
    auto copy = listeners;  // a listener may unsubscribe while called
    for (auto& [id, f] : copy) {
      if (listeners.count(id)) f(v);
    }
  }

  void fetch_snapshot(const std::string& id, const std::string& camera) {
    static const std::regex kCamera("^[A-Za-z0-9_-]{1,64}$");
    if (settings.frigate_url.empty() || !std::regex_match(camera, kCamera)) return;
    std::string base = settings.frigate_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    HttpRequest req;
    req.url = base + "/api/" + camera + "/latest.jpg?h=480";
    req.timeout = settings.snapshot_timeout;
    req.max_response = settings.snapshot_limit;
    workers.run([req] { return get(req); },
                [self = shared_from_this(), id](Result<HttpResponse> r) {
                  if (self->stopped) return;
                  Alarm* a = self->find(id);
                  if (!a) return;
                  if (!r || r.value().status != 200 || r.value().body.size() < 4 ||
                      r.value().body.compare(0, 2, "\xFF\xD8") != 0) {
                    self->log.warn("No snapshot for a camera alarm.",
                                   {{"camera", a->camera},
                                    {"reason", r ? "HTTP " + std::to_string(r.value().status) +
                                                       " or not a JPEG"
                                                 : r.error().message}});
                    return;
                  }
                  a->snapshot = std::make_shared<const std::string>(std::move(r.value().body));
                  self->prune();
                  if (a->snapshot) self->notify(*a);
                });
  }

  void answer(const std::string& alarm_id, Answer ans, std::function<void(Result<json>)> done) {
    Alarm* a = find(alarm_id);
    if (!a)
      return done(Error{Errc::not_found,
                        "No such alarm on this box (it may be older than the box's memory)."});
    if (!a->answer.is_null()) return done(a->view());
    if (ans.decision != "denied" && ans.decision != "allowed") {
      return done(Error{Errc::invalid, "decision must be \"denied\" or \"allowed\"."});
    }
    if (ans.decision == "allowed" && ans.reason.empty()) {
      return done(Error{Errc::invalid, "Letting a banned visitor in needs a reason."});
    }
    if (ans.reason.size() > kReasonLimit)
      return done(Error{Errc::invalid, "The reason is longer than 500 bytes."});
    replica::OutboundEvent e;
    e.client_id = ans.client_id;
    e.type = "visitor_entry";
    e.occurred_at = ans.occurred_at.empty() ? format_rfc3339(std::chrono::system_clock::now())
                                            : ans.occurred_at;
    e.data = {{"name", a->ban["fullName"].is_string() ? a->ban["fullName"] : json("?")},
              {"guardId", ans.guard_id},
              {"decision", ans.decision}};
    if (a->source == "plate") e.data["plate"] = a->read;
    if (!ans.reason.empty()) e.data["reason"] = ans.reason;
    events.enqueue(std::move(e), [self = shared_from_this(), alarm_id, ans,
                                  done = std::move(done)](Result<replica::Enqueued> r) {
      if (self->stopped) return;
      if (!r) return done(r.error());
      Alarm* a = self->find(alarm_id);
      if (!a)
        return done(Error{Errc::not_found, "The alarm was dropped while its answer was saved."});
      if (a->answer.is_null()) {
        a->answer = {{"decision", ans.decision},
                     {"guardId", ans.guard_id},
                     {"at", format_rfc3339(std::chrono::system_clock::now())}};
        if (!ans.reason.empty()) a->answer["reason"] = ans.reason;
        self->log.info(
            "A guard answered a camera alarm.",
            {{"alarm_id", alarm_id}, {"guard_id", ans.guard_id}, {"decision", ans.decision}});
        self->notify(*a);
      }
      done(a->view());
    });
  }
};

CameraAlarms::CameraAlarms(BlockingPool& workers, replica::ReplicaReads& reads,
                           replica::EventSink& events, AlarmSettings settings)
    : impl_(std::make_shared<Impl>(workers, reads, events, std::move(settings))) {}

CameraAlarms::~CameraAlarms() {
  impl_->stopped = true;
  impl_->retry.cancel();
  impl_->listeners.clear();
}

void CameraAlarms::seen(Sighting sighting) {
  impl_->affinity.assert_on_loop("CameraAlarms::seen");
  impl_->seen(std::move(sighting));
}

void CameraAlarms::bans_changed() {
  impl_->bans.reset();
  impl_->matched.clear();  // a new ban may match a read seen before
  ++impl_->bans_generation;
}

std::uint64_t CameraAlarms::raised() const { return impl_->raised_count; }

nlohmann::json CameraAlarms::list() const {
  impl_->prune();
  json out = json::array();
  for (const auto& a : impl_->alarms) out.push_back(a.view());
  return out;
}

std::uint64_t CameraAlarms::subscribe(std::function<void(const nlohmann::json&)> on_change) {
  const auto id = impl_->next_listener++;
  impl_->listeners.emplace(id, std::move(on_change));
  return id;
}

void CameraAlarms::unsubscribe(std::uint64_t id) { impl_->listeners.erase(id); }

void CameraAlarms::answer(const std::string& alarm_id, Answer answer,
                          std::function<void(Result<nlohmann::json>)> done) {
  impl_->affinity.assert_on_loop("CameraAlarms::answer");
  impl_->answer(alarm_id, std::move(answer), std::move(done));
}

const std::string& CameraAlarms::boot() const { return impl_->boot; }

std::shared_ptr<const std::string> CameraAlarms::snapshot(const std::string& alarm_id) const {
  Alarm* a = impl_->find(alarm_id);
  return a ? a->snapshot : nullptr;
}

}  // namespace secbox::alarms
