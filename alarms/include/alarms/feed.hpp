#pragma once
// What the LAN server sees of the camera alarms: a feed it lists, listens
// to, answers and reads snapshots from. alarms::CameraAlarms implements it;
// the LAN library knows only this header (secbox_alarm_feed), not how
// alarms are raised.
//
// Loop thread only.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace secbox::alarms {

// A guard's answer to an alarm.
struct Answer {
  std::string guard_id;
  std::string decision;   // "denied" (turned away) or "allowed" (let in anyway)
  std::string reason;     // required when allowed
  std::string client_id;  // the visitor_entry's, chosen by the app (a retry is the same entry)
  std::string
      occurred_at;  // RFC 3339, when the guard answered (it may wait in the phone); empty: now
};

// What the LAN server sees. An alarm is JSON:
//   {id, camera, frigateEventId, source: "plate"|"face", read, score,
//    match: "exact"|"confusion"|"misread"|"name", raisedAt,
//    ban: {id, fullName, plate, reason, photoUrl}, hasSnapshot,
//    answer: null | {decision, guardId, reason?, at}}
class AlarmFeed {
 public:
  virtual ~AlarmFeed() = default;
  // Every alarm kept, oldest first.
  virtual nlohmann::json list() const = 0;
  // on_change gets an alarm each time one is raised or changes (its
  // snapshot arrived, a guard answered). The id is for unsubscribe.
  virtual std::uint64_t subscribe(std::function<void(const nlohmann::json&)> on_change) = 0;
  virtual void unsubscribe(std::uint64_t id) = 0;
  // Queues the visitor_entry and marks the alarm answered; the alarm after
  // it. Errors: not_found (no such alarm kept), invalid (the message says
  // what), or the queue's. An alarm answered already answers as it is.
  virtual void answer(const std::string& alarm_id, Answer answer,
                      std::function<void(Result<nlohmann::json>)> done) = 0;
  // The camera's snapshot taken when the alarm was raised; null when none.
  virtual std::shared_ptr<const std::string> snapshot(const std::string& alarm_id) const = 0;
  // Made anew each time the box starts: an app that sees it change knows the
  // box forgot the alarms it held, and keeps its own unanswered ones.
  virtual const std::string& boot() const = 0;
};

}  // namespace secbox::alarms
