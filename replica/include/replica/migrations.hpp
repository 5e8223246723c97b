#pragma once
// Schema migrations: migrations/NNNN_name.sql, embedded in the binary at build
// time, applied in order, each in its own transaction, recorded in
// schema_migrations, under an advisory lock so that two starts cannot race.
// A database whose schema is newer than the binary knows is refused.
// Blocking: run from the database thread (Database::run) or a CLI command.
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace secbox::replica {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

const std::vector<Migration>& builtin_migrations();

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<int> applied;
};

// Error codes: "schema_newer" (refuse to run), "unavailable" (cannot connect:
// worth retrying), "migration_failed" (a migration's SQL failed; nothing of it
// was kept).
Result<MigrationReport> migrate(const std::string& connection_string,
                                const std::vector<Migration>& migrations = builtin_migrations());

// The highest version recorded, 0 for a database never migrated.
Result<int> schema_version(const std::string& connection_string);

}  // namespace secbox::replica
