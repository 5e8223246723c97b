#include "media/frigate_events.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>
#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/atomic_file.hpp"
#include "common/http_client.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "replica/ports.hpp"

namespace secbox::media {
namespace {

// What one poll read: every event after the cursor up to some point, oldest
// first and with no gap, so that the cursor can move to the newest of them.
// `more` when Frigate has newer ones still to read (the next poll follows at
// once).
struct Poll {
  bool reachable = false;
  std::string error;
  std::vector<ParsedEvent> events;
  std::size_t skipped = 0;
  bool more = false;
  bool newest_first = false;         // this Frigate ignored sort=date_asc (an older release)
  bool tie_overflow = false;         // a page of events that all start at the same instant
  std::optional<double> gap_before;  // events after the cursor and before this were not read
  // For the alarms: the events in progress now, and those that ended since
  // the last poll read by id; what is in progress now, by id.
  std::vector<ParsedEvent> live;
  std::optional<std::vector<std::string>> in_progress_ids;
};

struct Page {
  std::vector<ParsedEvent> events;  // in Frigate's order
  std::size_t raw = 0;              // entries in the answer, parsed or not
  std::size_t skipped = 0;
};

std::string number(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", v);  // exact: a boundary event is not read twice
  return text;
}

Result<nlohmann::json> get_json(const std::string& url, std::chrono::milliseconds timeout) {
  HttpRequest req;
  req.url = url;
  req.timeout = timeout;
  req.max_response = 8u << 20;
  // Frigate's nginx (port 5000) keeps a JSON answer 5 s per URL: a poll that
  // asks the same URL each second would see a new event up to 5 s late.
  req.headers = {"X-Cache-Bypass: 1"};
  auto res = get(req);
  if (!res) return res.error();
  if (res.value().status != 200)
    return Error{Errc::network, "HTTP " + std::to_string(res.value().status)};
  return nlohmann::json::parse(res.value().body, nullptr, false);
}

Result<Page> get_page(const std::string& base, double after, std::optional<double> before,
                      std::size_t limit, std::chrono::milliseconds timeout) {
  auto answer = get_json(
      base + "/api/events?after=" + number(after) + (before ? "&before=" + number(*before) : "") +
          "&sort=date_asc&limit=" + std::to_string(limit) + "&include_thumbnails=0",
      timeout);
  if (!answer) return answer.error();
  const auto& json = answer.value();
  if (!json.is_array()) return Error{Errc::invalid, "the events answer is not a JSON array"};
  Page page;
  page.raw = json.size();
  for (const auto& e : json) {
    if (auto parsed = parse_frigate_event(e)) {
      page.events.push_back(std::move(*parsed));
    } else {
      ++page.skipped;
    }
  }
  return page;
}

bool by_start(const ParsedEvent& a, const ParsedEvent& b) { return a.start_time < b.start_time; }

// Everything after `after`, oldest first. Frigate answers at most `limit`
// events a request, newest first unless it honours sort=date_asc (recent
// releases do). Oldest first, a full page may end inside a group of events that
// share a start time: those are left for the next read, which starts after
// the last complete instant. Newest first, the pages are walked backwards
// (`before`, which Frigate compares strictly, set just past the oldest start
// read so the events tied with it come again) until one reaches the cursor;
// at most `hold` events are kept, the oldest, and the newer ones are read
// again by the next poll.
Poll read_pages(const std::string& base, double after, const FrigateEventsSettings& s) {
  Poll p;
  auto first = get_page(base, after, std::nullopt, s.page, s.answer_timeout);
  if (!first) {
    p.error = first.error().message;
    return p;
  }
  p.reachable = true;
  Page page = std::move(first.value());
  p.skipped = page.skipped;
  const bool full = page.raw >= s.page;
  p.newest_first = !std::is_sorted(page.events.begin(), page.events.end(), by_start);
  if (!full) {
    p.events = std::move(page.events);
    std::stable_sort(p.events.begin(), p.events.end(), by_start);
    return p;
  }
  p.more = true;
  if (!p.newest_first) {
    p.events = std::move(page.events);
    const double last = p.events.empty() ? after : p.events.back().start_time;
    auto cut = std::find_if(p.events.begin(), p.events.end(),
                            [&](const ParsedEvent& e) { return e.start_time == last; });
    if (cut == p.events.begin()) {
      p.tie_overflow = true;  // nothing older to stop at: take the instant whole
    } else {
      p.events.erase(cut, p.events.end());
    }
    return p;
  }
  // Newest first: walk back to the cursor.
  std::vector<ParsedEvent> held = std::move(page.events);
  std::stable_sort(held.begin(), held.end(), by_start);
  std::set<std::string> seen;
  for (const auto& e : held) seen.insert(e.client_id);
  bool dropped = false;
  bool reached = false;
  std::size_t pages = 1;
  auto take = [&](Page& older) {
    p.skipped += older.skipped;
    std::size_t fresh = 0;
    for (auto& e : older.events) {
      if (seen.insert(e.client_id).second) {
        held.push_back(std::move(e));
        ++fresh;
      }
    }
    std::stable_sort(held.begin(), held.end(), by_start);
    ++pages;
    if (older.raw < s.page) reached = true;
    return fresh;
  };
  while (!reached && pages < s.max_pages && !held.empty()) {
    const double oldest = held.front().start_time;
    auto next = get_page(base, after, std::nextafter(oldest, HUGE_VAL), s.page, s.answer_timeout);
    if (!next) {
      p.error = next.error().message;
      p.events.clear();
      return p;  // nothing moves; the next poll reads again
    }
    if (take(next.value()) == 0 && !reached) {
      // A full page of one instant, all read already: step past it.
      p.tie_overflow = true;
      auto strict = get_page(base, after, oldest, s.page, s.answer_timeout);
      if (!strict) {
        p.error = strict.error().message;
        return p;
      }
      take(strict.value());
    }
    if (held.size() > s.hold) {
      // Keep the oldest; the newest are read again (and the instant the cut
      // falls in goes whole, so the cursor never passes one of its events).
      const double cut = held[s.hold].start_time;
      held.erase(std::find_if(held.begin(), held.end(),
                              [&](const ParsedEvent& e) { return e.start_time >= cut; }),
                 held.end());
      dropped = true;
    }
  }
  if (!reached && !held.empty()) {
    // Not back to the cursor within the pages one poll may read: the events
    // older than those held are skipped, and the log says from when.
    p.gap_before = held.front().start_time;
  }
  p.more = dropped || !reached;
  p.events = std::move(held);
  return p;
}

// The events in progress (newest first, as Frigate answers without `sort`),
// and those of `previous` that are no longer, each read by id once.
void read_live(const std::string& base, const std::vector<std::string>& previous,
               const FrigateEventsSettings& s, Poll& p) {
  auto now = get_json(base + "/api/events?in_progress=1&limit=" + std::to_string(s.in_progress) +
                          "&include_thumbnails=0",
                      s.answer_timeout);
  if (!now || !now.value().is_array()) return;  // the next poll tries again
  std::vector<std::string> ids;
  for (const auto& e : now.value()) {
    if (auto parsed = parse_frigate_event(e)) {
      ids.push_back(parsed->id);
      p.live.push_back(std::move(*parsed));
    }
  }
  std::size_t read = 0;
  for (const auto& id : previous) {
    if (std::find(ids.begin(), ids.end(), id) != ids.end() || read >= s.ended) continue;
    ++read;
    auto last = get_json(base + "/api/events/" + id, s.answer_timeout);
    if (!last) continue;  // gone (deleted), or Frigate busy: its last state was seen
    if (auto parsed = parse_frigate_event(last.value())) p.live.push_back(std::move(*parsed));
  }
  p.in_progress_ids = std::move(ids);
}

Poll read_since(const std::string& base, double after, const std::vector<std::string>& in_progress,
                const FrigateEventsSettings& s) {
  Poll p = read_pages(base, after, s);
  if (p.reachable) read_live(base, in_progress, s, p);
  return p;
}

std::string iso(double unix_seconds) {
  using namespace std::chrono;
  return format_rfc3339(system_clock::time_point(
      duration_cast<system_clock::duration>(duration<double>(unix_seconds))));
}

}  // namespace

std::optional<ParsedEvent> parse_frigate_event(const nlohmann::json& e) {
  static const std::regex kId("^[A-Za-z0-9_.:-]{1,110}$");
  if (!e.is_object()) return std::nullopt;
  auto str = [&](const char* k) -> std::optional<std::string> {
    auto it = e.find(k);
    if (it == e.end() || !it->is_string() || it->get<std::string>().empty()) return std::nullopt;
    return it->get<std::string>();
  };
  auto num = [](const nlohmann::json& o, const char* k) -> std::optional<double> {
    if (!o.is_object()) return std::nullopt;
    auto it = o.find(k);
    if (it == o.end() || !it->is_number()) return std::nullopt;
    double v = it->get<double>();
    return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
  };
  auto id = str("id");
  auto camera = str("camera");
  auto label = str("label");
  auto start = num(e, "start_time");
  if (!id || !camera || !label || !start || *start <= 0 || !std::regex_match(*id, kId))
    return std::nullopt;
  // Frigate 0.12 has top_score at the top; 0.13+ under data.
  auto score = num(e, "top_score");
  if (!score && e.contains("data")) score = num(e["data"], "top_score");
  if (!score) score = num(e, "score");
  if (!score && e.contains("data")) score = num(e["data"], "score");
  ParsedEvent p;
  p.id = *id;
  p.camera = *camera;
  p.label = *label;
  p.end_time = num(e, "end_time");
  p.in_progress = !p.end_time;
  const nlohmann::json none;
  const auto& data = e.contains("data") && e["data"].is_object() ? e["data"] : none;
  // sub_label: text in the events API; [name, score] in MQTT payloads.
  if (auto it = e.find("sub_label"); it != e.end()) {
    if (it->is_string()) {
      p.sub_label = it->get<std::string>();
    } else if (it->is_array() && it->size() == 2 && (*it)[0].is_string() && (*it)[1].is_number()) {
      p.sub_label = (*it)[0].get<std::string>();
      p.sub_label_score = (*it)[1].get<double>();
    }
  }
  if (auto v = num(data, "sub_label_score")) p.sub_label_score = *v;
  if (auto it = data.is_object() ? data.find("recognized_license_plate") : data.end();
      data.is_object() && it != data.end() && it->is_string()) {
    p.plate = it->get<std::string>();
  }
  if (auto v = num(data, "recognized_license_plate_score")) p.plate_score = *v;
  if (p.sub_label.size() > 128) p.sub_label.clear();
  if (p.plate.size() > 32) p.plate.clear();
  p.client_id = name_uuid("frigate-event:" + *id);
  p.start_time = *start;
  p.data = {{"camera", *camera},
            {"label", *label},
            {"score", score.value_or(0.0)},
            {"startTime", iso(*start)}};
  if (auto end = num(e, "end_time")) p.data["endTime"] = iso(*end);
  return p;
}

struct FrigateEvents::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& l, BlockingPool& w, replica::EventSink& e, FrigateEventsSettings s,
       OnObject o)
      : loop(l), workers(w), sink(e), settings(std::move(s)), on_object(std::move(o)), timer(l) {}
  boost::asio::io_context& loop;
  BlockingPool& workers;
  replica::EventSink& sink;
  FrigateEventsSettings settings;
  OnObject on_object;
  boost::asio::steady_timer timer;
  std::vector<std::string> in_progress;  // ids in progress at the last poll
  double after = 0;
  std::optional<bool> reachable;
  std::uint64_t queued = 0;
  bool stopping = false;
  bool busy = false;
  bool more = false;  // the last poll left newer events to read at once
  bool said_newest_first = false;
  std::function<void()> on_stopped;
  log::Logger log{"frigate"};

  void finish_if_stopping() {
    if (stopping && !busy && on_stopped) {
      auto f = std::move(on_stopped);
      on_stopped = nullptr;
      f();
    }
  }

  std::chrono::milliseconds next_poll() const {
    return more ? std::chrono::milliseconds(0) : settings.poll;
  }

  void schedule(std::chrono::milliseconds in) {
    timer.expires_after(in);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->stopping) self->poll();
    });
  }

  void poll() {
    busy = true;
    std::string base = settings.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    workers.run([base, after = after, live = in_progress,
                 s = settings] { return read_since(base, after, live, s); },
                [self = shared_from_this()](Poll p) { self->polled(std::move(p)); });
  }

  void polled(Poll p) {
    if (stopping) {
      busy = false;
      return finish_if_stopping();
    }
    if (reachable != p.reachable) {
      if (p.reachable) {
        log.info("Frigate's events are reachable.", {{"url", settings.base_url}});
      } else {
        log.warn("Frigate's events cannot be read; polling every 30 s until they can.",
                 {{"url", settings.base_url}, {"reason", p.error}});
      }
      reachable = p.reachable;
    }
    if (p.newest_first && !said_newest_first) {
      said_newest_first = true;
      log.warn(
          "This Frigate answers newest first whatever it is asked (an older release); its events "
          "are paged backwards.",
          {{"url", settings.base_url}});
    }
    if (p.skipped)
      log.warn("Skipped Frigate events without an id, camera, label or start time.",
               {{"count", p.skipped}});
    if (p.tie_overflow)
      log.warn("A whole page of Frigate events starts at one instant; some of them may be missed.",
               {});
    if (p.reachable && !p.error.empty())
      log.warn("Frigate's events could not be paged.", {{"reason", p.error}});
    if (p.gap_before) {
      log.error("Too many Frigate events to page back through; the oldest are skipped.",
                {{"after", iso(after)}, {"before", iso(*p.gap_before)}});
    }
    more = p.more && p.error.empty();
    if (p.in_progress_ids) in_progress = std::move(*p.in_progress_ids);
    if (on_object) {
      for (const auto& e : p.events) on_object(e);
      for (const auto& e : p.live) on_object(e);
    }
    if (!p.reachable || p.events.empty()) {
      busy = false;
      return schedule(p.reachable ? settings.poll : settings.poll_unreachable);
    }
    enqueue(std::make_shared<std::vector<ParsedEvent>>(std::move(p.events)), 0);
  }

  // The cursor once events [0, i) are durable: the start of the newest of
  // them that no later event shares (the cursor is compared strictly).
  double durable_until(const std::vector<ParsedEvent>& events, std::size_t i) const {
    if (i == events.size()) return i == 0 ? after : events.back().start_time;
    const double next = events[i].start_time;
    while (i > 0 && events[i - 1].start_time >= next) --i;
    return i == 0 ? after : events[i - 1].start_time;
  }

  // One after the other, so that the cursor only moves past what is durable.
  void enqueue(std::shared_ptr<std::vector<ParsedEvent>> events, std::size_t i) {
    if (stopping || i == events->size()) return persist(durable_until(*events, i), i);
    const auto& e = (*events)[i];
    sink.enqueue(replica::OutboundEvent{e.client_id, "frigate_event", iso(e.start_time), e.data},
                 [self = shared_from_this(), events, i](Result<replica::Enqueued> r) {
                   if (!r) {
                     self->log.warn(
                         "A Frigate event could not be queued; it is read again at the next poll.",
                         {{"client_id", (*events)[i].client_id}});
                     self->more = false;
                     return self->persist(self->durable_until(*events, i), i);
                   }
                   ++self->queued;
                   self->enqueue(events, i + 1);
                 });
  }

  void persist(double cursor, std::size_t count) {
    if (count == 0 || cursor <= after) {
      busy = false;
      finish_if_stopping();
      if (!stopping) schedule(next_poll());
      return;
    }
    after = cursor;
    char text[96];
    std::snprintf(text, sizeof text, "{\"after\":%.17g}\n", cursor);
    workers.run([path = settings.state_file,
                 body = std::string(text)] { return write_file_atomically(path, body); },
                [self = shared_from_this()](Result<void> r) {
                  if (!r)
                    self->log.error("Cannot save the Frigate events cursor.",
                                    {{"reason", r.error().message}});
                  self->busy = false;
                  self->finish_if_stopping();
                  if (!self->stopping) self->schedule(self->next_poll());
                });
  }
};

FrigateEvents::FrigateEvents(boost::asio::io_context& loop, BlockingPool& workers,
                             replica::EventSink& events, FrigateEventsSettings settings,
                             OnObject on_object)
    : impl_(std::make_shared<Impl>(loop, workers, events, std::move(settings),
                                   std::move(on_object))) {}
FrigateEvents::~FrigateEvents() { impl_->stopping = true; }

void FrigateEvents::start() {
  auto self = impl_;
  self->busy = true;
  self->workers.run([path = self->settings.state_file] { return read_file(path, 4096); },
                    [self](Result<std::string> text) {
                      self->busy = false;
                      if (text) {
                        auto j = nlohmann::json::parse(text.value(), nullptr, false);
                        if (j.is_object() && j.contains("after") && j["after"].is_number())
                          self->after = j["after"];
                      }
                      if (self->stopping) return self->finish_if_stopping();
                      // Never from the start of time: the newest hour on a first start.
                      if (self->after <= 0) {
                        self->after = std::chrono::duration<double>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count() -
                                      3600;
                      }
                      self->poll();
                    });
}

void FrigateEvents::stop(std::function<void()> on_stopped) {
  impl_->stopping = true;
  impl_->timer.cancel();
  impl_->on_stopped = std::move(on_stopped);
  if (!impl_->busy) boost::asio::post(impl_->loop, [self = impl_] { self->finish_if_stopping(); });
}

bool FrigateEvents::reachable() const { return impl_->reachable.value_or(false); }
double FrigateEvents::after() const { return impl_->after; }
std::uint64_t FrigateEvents::queued() const { return impl_->queued; }

}  // namespace secbox::media
