#pragma once
// Sync down (cloud-protocol §5): `snapshot.<entity>` chunks are validated as
// they arrive, staged with COPY, and swapped into the entity's table in one
// transaction after the last chunk (with the cursor, in the same
// transaction); `delta.<entity>` messages are applied in one transaction with
// per-row versions and tombstones, so repeats and reordering are harmless.
//
// Registers its message types on the router when made; all database work
// goes through Database (its own thread), replies come back on the loop.
// Loop thread only. Owned by the appliance, after the database and the
// router; it may be destroyed while database work it started is still
// queued (the box stopping): those answers are then dropped.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/log.hpp"
#include "replica/database.hpp"
#include "protocol/router.hpp"

namespace secbox::replica {

class SyncDown {
 public:
  SyncDown(Database& database, protocol::Router& router);

  // Called on the loop after each snapshot or delta is committed.
  void on_applied(std::function<void(const std::string& entity)> f) { on_applied_ = std::move(f); }

 private:
  struct Partial;
  void on_snapshot(const std::string& entity, const protocol::Envelope& e, protocol::Reply reply);
  void on_delta(const std::string& entity, const protocol::Envelope& e, protocol::Reply reply);
  void drop_partial(const std::string& entity, const std::string& why);

  Database& database_;
  std::map<std::string, std::shared_ptr<Partial>> partial_;  // by entity
  std::function<void(const std::string&)> on_applied_;
  log::Logger log_{"sync"};
  // Database answers that come back after this SyncDown is gone (the cloud
  // session it served was replaced) see it expired and touch nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace secbox::replica
