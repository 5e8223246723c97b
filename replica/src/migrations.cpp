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
// Recorded so that an older binary can tell a newer schema it can still use.
// NULL (a row written before the column, or by a writer that did not say)
// counts as a contract migration: an unknown migration is safe only when its
// writer said so.
const char* const kLedgerContract =
    "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS contract boolean";

int highest(const std::vector<Migration>& migrations) {
  int v = 0;
  for (const auto& m : migrations) v = std::max(v, m.version);
  return v;
}

// Which migrations a later version recorded, and whether each was a contract one.
std::vector<std::pair<int, bool>> recorded(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  std::vector<std::pair<int, bool>> out;
  for (const auto& row :
       tx.exec("SELECT version, contract FROM schema_migrations ORDER BY version")) {
    out.emplace_back(row[0].as<int>(), row[1].is_null() || row[1].as<bool>());
  }
  return out;
}

int recorded_version(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  auto exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists[0].as<bool>()) return 0;
  return tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].as<int>();
}

}  // namespace

bool is_contract(const Migration& m) {
  // In the leading comment lines only.
  std::string_view sql = m.sql;
  while (sql.substr(0, 2) == "--") {
    const auto eol = sql.find('\n');
    std::string_view line = sql.substr(0, eol);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line == "-- secbox: contract") return true;
    if (eol == std::string_view::npos) break;
    sql.remove_prefix(eol + 1);
  }
  return false;
}

Result<int> schema_version(const std::string& connection_string) {
  try {
    pqxx::connection conn(connection_string);
    return recorded_version(conn);
  } catch (const pqxx::broken_connection& e) {
    return Error{Errc::unavailable, std::string("cannot connect to the database: ") + e.what()};
  } catch (const std::exception& e) {
    return Error{Errc::database, e.what()};
  }
}

Result<MigrationReport> migrate(const std::string& connection_string,
                                const std::vector<Migration>& migrations, MigrateOptions options) {
  log::Logger log("migrations");
  std::vector<Migration> ordered = migrations;
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = std::make_unique<pqxx::connection>(connection_string);
  } catch (const std::exception& e) {
    return Error{Errc::unavailable, std::string("cannot connect to the database: ") + e.what()};
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
      tx.exec0(kLedgerContract);
    }
    report.from_version = recorded_version(*conn);
    const int known = highest(ordered);
    std::vector<int> unknown_contract;
    for (const auto& [version, contract] : recorded(*conn)) {
      const bool knows = std::any_of(ordered.begin(), ordered.end(),
                                     [v = version](const Migration& m) { return m.version == v; });
      if (knows) continue;
      (contract ? unknown_contract : report.unknown).push_back(version);
    }
    if (!unknown_contract.empty()) {
      conn->disconnect();
      return Error{Errc::schema_newer,
                   "the database schema is at version " + std::to_string(report.from_version) +
                       " (with contract migration " + std::to_string(unknown_contract.front()) +
                       ") but this secbox knows only up to " + std::to_string(known) +
                       "; run a newer secbox, or restore the database from before the upgrade"};
    }
    if (!report.unknown.empty()) {
      log.warn(
          "The database schema is newer than this secbox by expand migrations only; running with "
          "it.",
          {{"schema_version", report.from_version}, {"known", known}});
    }
    for (const auto& m : ordered) {
      if (!options.contract && is_contract(m)) {
        pqxx::work tx(*conn);
        auto done = tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
        if (done.empty()) report.deferred.push_back(m.version);
        continue;
      }
      pqxx::work tx(*conn);
      auto done = tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
      if (!done.empty()) continue;
      current = &m;
      tx.exec(std::string(m.sql));
      tx.exec_params("INSERT INTO schema_migrations (version, name, contract) VALUES ($1, $2, $3)",
                     m.version, std::string(m.name), is_contract(m));
      tx.commit();
      report.applied.push_back(m.version);
      log.info("Applied a migration.", {{"version", m.version}, {"name", std::string(m.name)}});
    }
    current = nullptr;
    report.to_version = recorded_version(*conn);
    pqxx::nontransaction tx(*conn);
    tx.exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
  } catch (const pqxx::broken_connection& e) {
    return Error{Errc::unavailable, std::string("lost the database while migrating: ") + e.what()};
  } catch (const std::exception& e) {
    if (current != nullptr) {
      return Error{Errc::database, "migration " + std::to_string(current->version) + "_" +
                                       std::string(current->name) +
                                       " failed and was rolled back: " + e.what()};
    }
    return Error{Errc::database, e.what()};
  }
  return report;
}

}  // namespace secbox::replica
