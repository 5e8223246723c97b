#pragma once
// What the rest of the box reads from the replica: the active ban list, the
// guest authorizations valid on a local date (the community's time zone), a
// guard with its PIN hash, and how fresh each entity is. Each is one indexed
// query on the database thread; the callback comes back on the loop.
//
// Loop thread only. Owned by the appliance, after the database.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "replica/database.hpp"
#include "replica/ports.hpp"

namespace secbox::replica {

struct Freshness {
  std::int64_t cursor = 0;
  std::optional<std::string> last_applied_at;  // RFC 3339, UTC
  std::optional<std::string> last_snapshot_at;
};

class ReplicaReader final : public ReplicaReads {
 public:
  explicit ReplicaReader(Database& database) : database_(database) {}

  // Re-reads the cursors and freshness into the cache below.
  void refresh(std::function<void()> done = nullptr);
  // The cached figures (every entity of §5, 0 before the first refresh).
  std::map<std::string, std::int64_t> cursors() const override;
  const std::map<std::string, Freshness>& freshness() const { return freshness_; }

  // Bans not deleted and not expired.
  void ban_list(std::function<void(Result<BanList>)> done) override;
  // Active authorizations whose validity overlaps the local day `date`
  // (YYYY-MM-DD) in the community's time zone (UTC when none is known).
  void schedule(const std::string& date, std::function<void(Result<nlohmann::json>)> done) override;
  // A guard (role guard, not deleted); Errc::not_found otherwise.
  void guard(const std::string& id, std::function<void(Result<Guard>)> done) override;
  void guards(std::size_t limit, std::function<void(Result<nlohmann::json>)> done) override;

 private:
  Database& database_;
  std::map<std::string, Freshness> freshness_;
};

}  // namespace secbox::replica
