#pragma once
// What other modules see of the replica: a sink for outbound events and the
// reads the guard app needs. OutboundQueue and ReplicaReader implement them;
// the LAN API takes these instead of the concrete classes (and a test can
// hand it its own). Header only: no database, no transport.
//
// Loop thread only; callbacks come back on the loop.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace secbox::replica {

struct OutboundEvent {
  std::string client_id;    // a UUID chosen when the event is born
  std::string type;         // visitor_entry, ban_hit, frigate_event, guard_note, compose_result
  std::string occurred_at;  // RFC 3339
  nlohmann::json data = nlohmann::json::object();
};

struct Enqueued {
  std::int64_t seq = 0;
  bool duplicate = false;  // the clientId was already queued: nothing new was written
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Calls done once the event is durable (or refused). Errors: Errc::invalid
  // (the message says which field), Errc::queue_full, or the database's
  // (Errc::unavailable, Errc::database): then nothing was written.
  virtual void enqueue(OutboundEvent event, std::function<void(Result<Enqueued>)> done) = 0;
};

struct BanList {
  std::int64_t version = 0;  // the banned_visitor cursor
  nlohmann::json bans;       // [{id, fullName, plate, photoUrl, reason, createdAt, expiresAt}]
};

struct Guard {
  std::string id, community_id, display_name;
  std::optional<std::string> pin_hash;
};

class ReplicaReads {
 public:
  virtual ~ReplicaReads() = default;
  // The cursor of every entity of §5 (0 before the first read).
  virtual std::map<std::string, std::int64_t> cursors() const = 0;
  // Bans not deleted and not expired.
  virtual void ban_list(std::function<void(Result<BanList>)> done) = 0;
  // Active authorizations whose validity overlaps the local day `date`
  // (YYYY-MM-DD) in the community's time zone; error "invalid" for a bad date.
  virtual void schedule(const std::string& date,
                        std::function<void(Result<nlohmann::json>)> done) = 0;
  // A guard (role guard, not deleted); Errc::not_found otherwise.
  virtual void guard(const std::string& id, std::function<void(Result<Guard>)> done) = 0;
  // The guards who can sign in (role guard, not deleted, with a PIN), by
  // display name, at most `limit`: [{id, displayName}], nothing else.
  virtual void guards(std::size_t limit, std::function<void(Result<nlohmann::json>)> done) = 0;
};

}  // namespace secbox::replica
