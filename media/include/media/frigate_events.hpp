#pragma once
// Frigate's detections become `frigate_event`s in the outbound queue (§6):
// GET <FRIGATE_URL>/api/events?after=<unix time>&sort=date_asc&limit=100 every
// few seconds (libcurl on a worker), paged until every event after the cursor
// is read: Frigate answers at most `limit` events, and a release that ignores
// `sort` answers newest first and is paged backwards with `before`. Each event
// is queued with a clientId made from Frigate's id (a name-based UUID: the
// same event always has the same clientId), so that the queue's idempotency
// makes it exactly once even when windows overlap or the box restarts; the
// start time of the newest queued event is persisted
// (<state>/frigate-events.json) only after the queue has it.
// Frigate unreachable is a state (logged once when it changes, polled every
// 30 s), not an error a poll.
//
// What Frigate is tracking is reported as it changes, for the camera alarms:
// each poll (every second while Frigate answers: it is local, and a plate
// must alarm within 2 s) also reads the events in progress
// (`in_progress=1`), whose plate and sub_label Frigate refines while the
// object moves, and an event seen in progress that is no longer is read once
// more by id (`/api/events/<id>`) for its final state. Every event read, by
// either path, goes to `on_object`.
//
// Loop thread only.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/blocking.hpp"
#include "common/component.hpp"

namespace secbox::replica {
class EventSink;
}

namespace secbox::media {

struct FrigateEventsSettings {
  std::string base_url = "http://127.0.0.1:5000";
  std::string state_file;  // <state>/frigate-events.json
  std::chrono::milliseconds poll{1000};
  std::chrono::milliseconds poll_unreachable{30000};
  std::chrono::milliseconds answer_timeout{5000};
  std::size_t page = 100;        // Frigate's `limit` a request (its own default)
  std::size_t hold = 5000;       // events one poll may hold (newest-first Frigates)
  std::size_t max_pages = 200;   // requests one poll may make paging back
  std::size_t in_progress = 50;  // events in progress read a poll (the newest)
  std::size_t ended = 20;        // events that ended read by id a poll
};

// One Frigate event as §6's frigate_event data, or nullopt when it lacks what
// that needs. Pure; exposed for the tests.
struct ParsedEvent {
  std::string client_id;
  double start_time = 0;
  nlohmann::json data;
  // What the alarms look at (Frigate 0.16: sub_label at the top,
  // data.sub_label_score, data.recognized_license_plate(_score)).
  std::string id;  // Frigate's
  std::string camera, label;
  std::string sub_label, plate;
  double sub_label_score = 0, plate_score = 0;
  bool in_progress = false;        // end_time null
  std::optional<double> end_time;  // Unix time
};
std::optional<ParsedEvent> parse_frigate_event(const nlohmann::json& event);

// Every event read, each time it is read (in progress or ended).
using OnObject = std::function<void(const ParsedEvent& event)>;

class FrigateEvents final : public Component {
 public:
  // Each event read goes to `events` as frigate_event (§6); the cursor moves
  // past it once it is durable.
  FrigateEvents(boost::asio::io_context& loop, BlockingPool& workers, replica::EventSink& events,
                FrigateEventsSettings settings, OnObject on_object = nullptr);
  ~FrigateEvents() override;

  std::string_view name() const override { return "frigate-events"; }
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  bool reachable() const;
  double after() const;  // the persisted cursor
  std::uint64_t queued() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::media
