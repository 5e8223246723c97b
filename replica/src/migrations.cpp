#include "replica/migrations.hpp"

#include <algorithm>
#include <pqxx/pqxx>

#include "common/log.hpp"

namespace secbox::replica {
namespace {

// pg_advisory_lock key: "secbox" + "mig" in ASCII, any constant will do.
constexpr long long kMigrationLockKey = 0x736563626f786d69LL;

const char* const kCreateLedger =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "  version    integer PRIMARY KEY,"
    "  name       text NOT NULL,"
    "  applied_at timestamptz NOT NULL DEFAULT now())";

int highest(const std::vector<Migration>& migrations) {
  int v = 0;
  for (const auto& m : migrations) v = std::max(v, m.version);
  return v;
}

int recorded_version(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  auto exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists[0].as<bool>()) return 0;
  return tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].as<int>();
}

}  // namespace

Result<int> schema_version(const std::string& connection_string) {
  try {
    pqxx::connection conn(connection_string);
    return recorded_version(conn);
  } catch (const pqxx::broken_connection& e) {
    return Error{"unavailable", std::string("cannot connect to the database: ") + e.what()};
  } catch (const std::exception& e) {
    return Error{"database", e.what()};
  }
}

Result<MigrationReport> migrate(const std::string& connection_string,
                                const std::vector<Migration>& migrations) {
  log::Logger log("migrations");
  std::vector<Migration> ordered = migrations;
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(connection_string);
  } catch (const std::exception& e) {
    return Error{"unavailable", std::string("cannot connect to the database: ") + e.what()};
  }
  MigrationReport report;
  const Migration* current = nullptr;
  try {
    {
      pqxx::nontransaction tx(*conn);
      // Session-level: held across the per-migration transactions below, and
      // released by the server if this process dies.
      tx.exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
      tx.exec0(kCreateLedger);
    }
    report.from_version = recorded_version(*conn);
    const int known = highest(ordered);
    if (report.from_version > known) {
      conn->disconnect();
      return Error{"schema_newer",
                   "the database schema is at version " + std::to_string(report.from_version) +
                       " but this secbox knows only up to " + std::to_string(known) +
                       "; run a newer secbox, or restore the database from before the upgrade"};
    }
    for (const auto& m : ordered) {
      pqxx::work tx(*conn);
      auto done = tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
      if (!done.empty()) continue;
      current = &m;
      tx.exec(std::string(m.sql));
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                     std::string(m.name));
      tx.commit();
      report.applied.push_back(m.version);
      log.info("Applied a migration.", {{"version", m.version}, {"name", std::string(m.name)}});
    }
    current = nullptr;
    report.to_version = recorded_version(*conn);
    pqxx::nontransaction tx(*conn);
    tx.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
  } catch (const pqxx::broken_connection& e) {
    return Error{"unavailable", std::string("lost the database while migrating: ") + e.what()};
  } catch (const std::exception& e) {
    if (current != nullptr) {
      return Error{"migration_failed", "migration " + std::to_string(current->version) + "_" +
                                           std::string(current->name) +
                                           " failed and was rolled back: " + e.what()};
    }
    return Error{"database", e.what()};
  }
  return report;
}

}  // namespace secbox::replica
