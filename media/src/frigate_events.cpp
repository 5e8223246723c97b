#include "media/frigate_events.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/atomic_file.hpp"
#include "common/http_client.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/time.hpp"

namespace secbox::media {
namespace {

std::size_t collect(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > (8u << 20)) return 0;
  body->append(data, size * n);
  return size * n;
}

struct Poll {
  bool reachable = false;
  std::string error;
  std::vector<ParsedEvent> events;
  std::size_t skipped = 0;
};

Poll poll_once(const std::string& base, double after, std::chrono::milliseconds limit) {
  curl_init_once();
  Poll p;
  std::string body;
  char query[64];
  std::snprintf(query, sizeof query, "%.17g", after);  // exact: the newest event is not read again
  const std::string url = base + "/api/events?after=" + query + "&limit=100";
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(limit.count()));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(curl.get());
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK || status != 200) {
    p.error = rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP " + std::to_string(status);
    return p;
  }
  p.reachable = true;
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_array()) {
    p.error = "the events answer is not a JSON array";
    return p;
  }
  for (const auto& e : json) {
    if (auto parsed = parse_frigate_event(e)) {
      p.events.push_back(std::move(*parsed));
    } else {
      ++p.skipped;
    }
  }
  std::sort(p.events.begin(), p.events.end(),
            [](const ParsedEvent& a, const ParsedEvent& b) { return a.start_time < b.start_time; });
  return p;
}

std::string iso(double unix_seconds) {
  using namespace std::chrono;
  return format_rfc3339(system_clock::time_point(duration_cast<system_clock::duration>(duration<double>(unix_seconds))));
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
  if (!id || !camera || !label || !start || *start <= 0 || !std::regex_match(*id, kId)) return std::nullopt;
  // Frigate 0.12 has top_score at the top; 0.13+ under data.
  auto score = num(e, "top_score");
  if (!score && e.contains("data")) score = num(e["data"], "top_score");
  if (!score) score = num(e, "score");
  if (!score && e.contains("data")) score = num(e["data"], "score");
  ParsedEvent p;
  p.client_id = name_uuid("frigate-event:" + *id);
  p.start_time = *start;
  p.data = {{"camera", *camera}, {"label", *label}, {"score", score.value_or(0.0)}, {"startTime", iso(*start)}};
  if (auto end = num(e, "end_time")) p.data["endTime"] = iso(*end);
  return p;
}

struct FrigateEvents::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& l, BlockingPool& w, FrigateEventsSettings s, QueueEvent q)
      : loop(l), workers(w), settings(std::move(s)), queue(std::move(q)), timer(l) {}
  boost::asio::io_context& loop;
  BlockingPool& workers;
  FrigateEventsSettings settings;
  QueueEvent queue;
  boost::asio::steady_timer timer;
  double after = 0;
  std::optional<bool> reachable;
  std::uint64_t queued = 0;
  bool stopping = false;
  bool busy = false;
  std::function<void()> on_stopped;
  log::Logger log{"frigate"};

  void finish_if_stopping() {
    if (stopping && !busy && on_stopped) {
      auto f = std::move(on_stopped);
      on_stopped = nullptr;
      f();
    }
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
    workers.run([base, after = after, limit = settings.answer_timeout] { return poll_once(base, after, limit); },
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
    if (!p.reachable || p.events.empty()) {
      busy = false;
      return schedule(p.reachable ? settings.poll : settings.poll_unreachable);
    }
    if (p.skipped) log.warn("Skipped Frigate events without an id, camera, label or start time.", {{"count", p.skipped}});
    enqueue(std::make_shared<std::vector<ParsedEvent>>(std::move(p.events)), 0);
  }

  // One after the other, so that the cursor only moves past what is durable.
  void enqueue(std::shared_ptr<std::vector<ParsedEvent>> events, std::size_t i) {
    if (stopping || i == events->size()) return persist(events->at(i == 0 ? 0 : i - 1).start_time, i);
    const auto& e = (*events)[i];
    queue(e.client_id, iso(e.start_time), e.data, [self = shared_from_this(), events, i](bool ok) {
      if (!ok) {
        self->log.warn("A Frigate event could not be queued; it is read again at the next poll.",
                       {{"client_id", (*events)[i].client_id}});
        return self->persist(i == 0 ? self->after : (*events)[i - 1].start_time, i);
      }
      ++self->queued;
      self->enqueue(events, i + 1);
    });
  }

  void persist(double cursor, std::size_t count) {
    if (count == 0 || cursor <= after) {
      busy = false;
      finish_if_stopping();
      if (!stopping) schedule(settings.poll);
      return;
    }
    after = cursor;
    char text[96];
    std::snprintf(text, sizeof text, "{\"after\":%.17g}\n", cursor);
    workers.run([path = settings.state_file, body = std::string(text)] { return write_file_atomically(path, body); },
                [self = shared_from_this()](Result<void> r) {
                  if (!r) self->log.error("Cannot save the Frigate events cursor.", {{"reason", r.error().message}});
                  self->busy = false;
                  self->finish_if_stopping();
                  if (!self->stopping) self->schedule(self->settings.poll);
                });
  }
};

FrigateEvents::FrigateEvents(boost::asio::io_context& loop, BlockingPool& workers, FrigateEventsSettings settings,
                             QueueEvent queue)
    : impl_(std::make_shared<Impl>(loop, workers, std::move(settings), std::move(queue))) {}
FrigateEvents::~FrigateEvents() { impl_->stopping = true; }

void FrigateEvents::start() {
  auto self = impl_;
  self->busy = true;
  self->workers.run([path = self->settings.state_file] { return read_file(path, 4096); },
                    [self](Result<std::string> text) {
                      self->busy = false;
                      if (text) {
                        auto j = nlohmann::json::parse(text.value(), nullptr, false);
                        if (j.is_object() && j.contains("after") && j["after"].is_number()) self->after = j["after"];
                      }
                      if (self->stopping) return self->finish_if_stopping();
                      // Never from the start of time: the newest hour on a first start.
                      if (self->after <= 0) {
                        self->after = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() - 3600;
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
