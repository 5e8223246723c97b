#pragma once
// Camera ban alarms. Every tracked object Frigate reports (each poll, while it
// is in progress too: the plate is refined as the car moves) is matched
// against the replica's active bans: its plate as read (match_plate: case,
// spaces and dashes ignored, O/0 I/1 B/8 S/5 Z/2 equal, one misread
// character tolerated) when its score reaches the minimum, and its sub_label
// (a face's name, or a known plate's) when it is a ban's id. A match queues a
// `ban_hit` (source "camera", §6) whose clientId is made from the Frigate
// event id and the ban id, so one event raises one alarm however often it is
// updated, across restarts too; then the alarm goes to every guard app that
// listens (alarms/feed.hpp's AlarmFeed), with the camera's latest snapshot once it is fetched.
// A guard answers it ("denied": turned away; "allowed": let in anyway, with a
// reason), which queues a `visitor_entry`. Everything works offline: the
// bans are the replica, the events wait in the queue. An event that ended
// minutes before it was read (after a gap) is recorded, not alarmed.
//
// Kept in memory: the last `keep` alarms of the last `keep_for` (what an app
// that slept catches up on), snapshots of the newest 20.
//
// Loop thread only; the ban list is read through ReplicaReads, the snapshot
// fetched on the worker pool.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/blocking.hpp"
#include "common/result.hpp"
#include "alarms/feed.hpp"
#include "replica/ports.hpp"

namespace secbox::alarms {

// One Frigate tracked object as the events API shows it now.
struct Sighting {
  std::string event_id;  // Frigate's id
  std::string camera;
  std::string label;       // car, motorcycle, person, …
  std::string plate;       // data.recognized_license_plate; empty when none
  double plate_score = 0;  // data.recognized_license_plate_score
  std::string sub_label;   // a face's or a known plate's name; empty when none
  double sub_label_score = 0;
  std::optional<double> ended_at;  // Unix time; none while in progress
};

struct AlarmSettings {
  double min_score = 0.8;   // a plate read or a face below it raises nothing
  std::string frigate_url;  // the camera's latest.jpg; empty: no snapshot
  std::chrono::milliseconds snapshot_timeout{3000};
  std::size_t snapshot_limit = 1 << 20;
  std::size_t keep = 200;
  std::chrono::hours keep_for{12};
  // An event that ended longer ago than this (read after the box or Frigate
  // was down) still queues its ban_hit for the cloud, but alarms no guard:
  // that car is gone.
  std::chrono::seconds stale_after{300};
};

class CameraAlarms final : public AlarmFeed {
 public:
  CameraAlarms(BlockingPool& workers, replica::ReplicaReads& reads, replica::EventSink& events,
               AlarmSettings settings);
  ~CameraAlarms() override;

  void seen(Sighting sighting);
  // The ban list changed (a snapshot or a delta of banned_visitor).
  void bans_changed();
  std::uint64_t raised() const;

  nlohmann::json list() const override;
  std::uint64_t subscribe(std::function<void(const nlohmann::json&)> on_change) override;
  void unsubscribe(std::uint64_t id) override;
  void answer(const std::string& alarm_id, Answer answer,
              std::function<void(Result<nlohmann::json>)> done) override;
  std::shared_ptr<const std::string> snapshot(const std::string& alarm_id) const override;
  const std::string& boot() const override;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::alarms
