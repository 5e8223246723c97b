#pragma once
// Schema migrations: migrations/NNNN_name.sql, embedded in the binary at build
// time, applied in order, each in its own transaction, recorded in
// schema_migrations, under an advisory lock so that two starts cannot race.
// A database whose schema is newer than the binary knows is refused, unless
// every migration it does not know is an expand one (below).
//
// Expand and contract, so that an update can be rolled back (docs/updates.md):
// a migration is an *expand* one (new tables, new nullable columns, indexes:
// the previous version still reads and writes the schema) unless its SQL
// has the line `-- secbox: contract` (drops, renames, new constraints).
// A version on trial applies only expand migrations; its contract ones wait
// until it has passed the trial, when the previous version will not run again.
// The previous version, started again by a rollback, accepts a schema that
// is newer by expand migrations only.
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

// Whether the migration carries the `-- secbox: contract` line.
bool is_contract(const Migration& m);

struct MigrateOptions {
  bool contract = true;  // false while on trial: contract migrations wait
};

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<int> applied;
  std::vector<int> deferred;  // contract migrations left for after the trial
  std::vector<int> unknown;   // newer expand migrations this binary does not know
};

// Errors: Errc::schema_newer (refuse to run), Errc::unavailable (cannot
// connect: worth retrying), Errc::database (a migration's SQL failed; nothing
// of it was kept).
Result<MigrationReport> migrate(const std::string& connection_string,
                                const std::vector<Migration>& migrations = builtin_migrations(),
                                MigrateOptions options = {});

// The highest version recorded, 0 for a database never migrated.
Result<int> schema_version(const std::string& connection_string);

}  // namespace secbox::replica
