#include "replica/sync.hpp"

#include <pqxx/pqxx>

#include <array>
#include <tuple>

#include "entities.hpp"
#include "session.hpp"
#include "protocol/shapes.hpp"

namespace secbox::replica {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxRowsPerChunk = 5000;

// ---- on the database thread ----

// A checked row as its staging table's fields: id, version, c1…c8 (COPY
// escapes them).
using Field = std::optional<std::string>;
using StagedRow = std::tuple<Field, Field, Field, Field, Field, Field, Field, Field, Field, Field>;

Field field_text(const json& v) {
  if (v.is_null()) return std::nullopt;
  return v.is_string() ? v.get<std::string>() : v.dump();
}

StagedRow staged_row(const EntitySpec& spec, const json& row) {
  std::array<Field, EntitySpec::kStagedColumns> c;
  for (std::size_t i = 0; i < spec.columns.size() && i < c.size(); ++i) {
    auto it = row.find(spec.columns[i].field);
    if (it != row.end()) c[i] = field_text(*it);
  }
  return StagedRow{field_text(row["id"]), row.contains("version") ? field_text(row["version"]) : std::nullopt,
                   std::move(c[0]), std::move(c[1]), std::move(c[2]), std::move(c[3]),
                   std::move(c[4]), std::move(c[5]), std::move(c[6]), std::move(c[7])};
}

void stage_rows(pqxx::work& tx, const EntitySpec& spec, const std::vector<StagedRow>& rows) {
  pqxx::stream_to copy(tx, spec.staging_table(),
                       std::vector<std::string>{"id", "version", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"});
  for (const auto& r : rows) copy << r;
  copy.complete();
}

// Replaces the entity's whole set with the staged snapshot and moves the
// cursor, in the caller's transaction. Readers see the old set until it
// commits (a DELETE, not a TRUNCATE, which would block them).
std::int64_t swap_in(pqxx::work& tx, const EntitySpec& spec, const std::string& snapshot_id, std::int64_t version) {
  tx.exec0(std::string("DELETE FROM ") + spec.table);
  const auto inserted = tx.exec_params(
      std::string("INSERT INTO ") + spec.table + " (id, version, deleted, " + spec.column_list() + ") " +
          "SELECT id, COALESCE(version, $1), false, " + spec.select_from_staging() + " FROM " + spec.staging_table(),
      version);
  tx.exec_params0(
      "UPDATE sync_cursor SET version = $2, snapshot_version = $2, snapshot_id = $3,"
      " last_snapshot_at = now(), last_applied_at = now() WHERE entity = $1",
      std::string(spec.entity), version, snapshot_id);
  tx.exec0("TRUNCATE " + spec.staging_table());
  return static_cast<std::int64_t>(inserted.affected_rows());
}

struct Change {
  bool upsert = true;
  std::int64_t version = 0;
  std::string id;
  std::string row;  // JSON, upserts only
};

struct DeltaOutcome {
  std::int64_t cursor = 0;
  int applied = 0;
  int skipped = 0;
};

DeltaOutcome apply_changes(pqxx::work& tx, const EntitySpec& spec, const std::vector<Change>& changes) {
  const std::string entity = spec.entity;
  auto cursor_row = tx.exec_params1("SELECT version, snapshot_version FROM sync_cursor WHERE entity = $1 FOR UPDATE",
                                    entity);
  DeltaOutcome out;
  out.cursor = cursor_row[0].as<std::int64_t>();
  const auto snapshot_version = cursor_row[1].as<std::int64_t>();
  const std::string table = spec.table;
  const std::string upsert = "INSERT INTO " + table + " (id, version, deleted, " + spec.column_list() + ") " +
                             "SELECT $1, $2, false, " + spec.select_from_json() + " FROM (SELECT $3::jsonb AS r) s " +
                             "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, deleted = false, " +
                             spec.assignments(false);
  const std::string tombstone = "INSERT INTO " + table + " (id, version, deleted) VALUES ($1, $2, true) " +
                                "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, deleted = true, " +
                                spec.assignments(true);
  for (const auto& c : changes) {
    out.cursor = std::max(out.cursor, c.version);
    // A row's own version, or a tombstone's; for an id the table never held,
    // the last snapshot's.
    auto stored = tx.exec_params("SELECT version FROM " + table + " WHERE id = $1 FOR UPDATE", c.id);
    const std::int64_t current = stored.empty() ? snapshot_version : stored[0][0].as<std::int64_t>();
    if (c.version <= current) {
      ++out.skipped;
      continue;
    }
    if (c.upsert) {
      tx.exec_params0(upsert, c.id, c.version, c.row);
    } else {
      tx.exec_params0(tombstone, c.id, c.version);
    }
    ++out.applied;
  }
  tx.exec_params0("UPDATE sync_cursor SET version = $2, last_applied_at = now() WHERE entity = $1", entity,
                  out.cursor);
  return out;
}

// The payload's header fields, checked before anything else of a chunk.
std::optional<std::string> chunk_header_problem(const json& p) {
  auto is_int = [&](const char* k) { return p.contains(k) && p[k].is_number_integer(); };
  if (!p.contains("snapshotId") || !p["snapshotId"].is_string() ||
      !protocol::is_valid_id(p["snapshotId"].get<std::string>())) {
    return "snapshotId must be an id";
  }
  if (!is_int("version") || p["version"].get<std::int64_t>() < 0) return "version must be a non-negative integer";
  if (!is_int("chunk") || p["chunk"].get<std::int64_t>() < 1) return "chunk must be an integer from 1";
  if (!is_int("chunks") || p["chunks"].get<std::int64_t>() < 1) return "chunks must be an integer from 1";
  if (p["chunk"].get<std::int64_t>() > p["chunks"].get<std::int64_t>()) return "chunk is above chunks";
  if (!p.contains("rows") || !p["rows"].is_array()) return "rows must be an array";
  return std::nullopt;
}

}  // namespace

struct SyncDown::Partial {
  std::string snapshot_id;
  std::int64_t version = 0;
  int chunks = 0;
  int next = 1;
  std::int64_t rows = 0;  // staged so far, checked before the swap
  std::optional<std::string> problem;  // the first, answered at the last chunk
};

SyncDown::SyncDown(Database& database, protocol::Router& router) : database_(database) {
  for (const auto& spec : entity_specs()) {
    const std::string entity = spec.entity;
    router.on_request(
        "snapshot." + entity,
        [this, entity](const protocol::Envelope& e, protocol::Reply r) { on_snapshot(entity, e, std::move(r)); },
        protocol::PayloadCheck::by_handler);
    router.on_request("delta." + entity, [this, entity](const protocol::Envelope& e, protocol::Reply r) {
      on_delta(entity, e, std::move(r));
    });
  }
}

void SyncDown::drop_partial(const std::string& entity, const std::string& why) {
  if (partial_.erase(entity) > 0) log_.warn("Dropped a partial snapshot.", {{"entity", entity}, {"reason", why}});
  database_.run<int>(
      [entity](Session& s) -> Result<int> {
        pqxx::work tx(s.conn());
        tx.exec0("TRUNCATE " + entity_spec(entity)->staging_table());
        tx.commit();
        return 0;
      },
      [](Result<int>) {});
}

void SyncDown::on_snapshot(const std::string& entity, const protocol::Envelope& e, protocol::Reply reply) {
  const auto& p = e.payload;
  if (auto problem = chunk_header_problem(p)) {
    drop_partial(entity, *problem);
    return reply.error(protocol::ErrorCode::invalid_args, *problem);
  }
  const auto snapshot_id = p["snapshotId"].get<std::string>();
  const int chunk = p["chunk"].get<int>();
  const int chunks = p["chunks"].get<int>();
  auto& slot = partial_[entity];
  if (slot && slot->snapshot_id != snapshot_id) {
    log_.info("A new snapshot replaces a partial one.",
              {{"entity", entity}, {"old", slot->snapshot_id}, {"new", snapshot_id}});
    slot.reset();
  }
  if (!slot) {
    if (chunk != 1) {
      drop_partial(entity, "gap");
      return reply.error(protocol::ErrorCode::invalid_args, "snapshot " + snapshot_id + " chunk " + std::to_string(chunk) +
                                             " arrived without its chunk 1; the partial snapshot was dropped");
    }
    slot = std::make_shared<Partial>();
    slot->snapshot_id = snapshot_id;
    slot->version = p["version"].get<std::int64_t>();
    slot->chunks = chunks;
  }
  auto partial = slot;
  if (chunk != partial->next || chunks != partial->chunks) {
    const std::string why = chunk != partial->next
                                ? "expected chunk " + std::to_string(partial->next) + ", got " + std::to_string(chunk)
                                : "chunks changed from " + std::to_string(partial->chunks) + " to " +
                                      std::to_string(chunks);
    drop_partial(entity, why);
    return reply.error(protocol::ErrorCode::invalid_args, "snapshot " + snapshot_id + ": " + why + "; the partial snapshot was dropped");
  }
  ++partial->next;
  const auto& rows = p["rows"];
  if (!partial->problem && rows.size() > kMaxRowsPerChunk) {
    partial->problem = "chunk " + std::to_string(chunk) + " has " + std::to_string(rows.size()) +
                       " rows; at most 5000 are allowed";
  }
  std::vector<StagedRow> staged;
  if (!partial->problem) {
    const auto* shape = protocol::shapes::row(entity);
    const auto* spec = entity_spec(entity);
    staged.reserve(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (auto problem = protocol::shapes::check(*shape, rows[i])) {
        partial->problem = "chunk " + std::to_string(chunk) + " row " + std::to_string(i) + ": " + problem->describe();
        staged.clear();
        break;
      }
      staged.push_back(staged_row(*spec, rows[i]));
    }
  }
  const bool last = chunk == chunks;
  if (!last) reply.release();  // chunks 1..n-1 get no reply

  if (partial->problem) {
    if (!last) return;
    const auto problem = *partial->problem;
    drop_partial(entity, problem);
    log_.warn("Refused a snapshot with an invalid row; the old set stays.", {{"entity", entity}, {"problem", problem}});
    return reply.error(protocol::ErrorCode::invalid_args, problem);
  }
  if (last) partial_.erase(entity);

  const std::int64_t version = partial->version;
  partial->rows += static_cast<std::int64_t>(staged.size());
  const std::int64_t expected = partial->rows;
  database_.run<std::int64_t>(
      [entity, snapshot_id, chunk, last, version, expected,
       staged = std::move(staged)](Session& s) -> Result<std::int64_t> {
        const auto& spec = *entity_spec(entity);
        pqxx::work tx(s.conn());
        if (chunk == 1) tx.exec0("TRUNCATE " + spec.staging_table());
        stage_rows(tx, spec, staged);
        std::int64_t rows = 0;
        if (last) {
          // A chunk whose staging failed earlier must not leave a short set.
          const auto have = tx.exec1("SELECT count(*) FROM " + spec.staging_table())[0].as<std::int64_t>();
          if (have != expected) {
            return Error{Errc::internal, "snapshot " + snapshot_id + " was not staged whole; the old set stays"};
          }
          try {
            rows = swap_in(tx, spec, snapshot_id, version);
          } catch (const pqxx::unique_violation&) {
            return Error{Errc::invalid, "snapshot " + snapshot_id + " holds the same id twice"};
          } catch (const pqxx::data_exception&) {
            return Error{Errc::invalid, "snapshot " + snapshot_id + " holds a value the database refuses"};
          }
        }
        tx.commit();
        return rows;
      },
      [this, alive = std::weak_ptr<int>(alive_), entity, snapshot_id, version, last, partial,
       reply](Result<std::int64_t> r) mutable {
        if (alive.expired()) return;  // replaced (a re-pairing) while the database worked
        if (!r) {
          if (!last) {  // answered at the last chunk
            if (!partial->problem) partial->problem = r.error().message;
            return;
          }
          log_.error("A snapshot could not be applied; the old set stays.",
                     {{"entity", entity}, {"reason", r.error().message}});
          return reply.error(r.error());
        }
        if (!last) return;
        log_.info("Applied a snapshot.", {{"entity", entity}, {"version", version}, {"rows", r.value()}});
        reply.send("ack", {{"snapshotId", snapshot_id}, {"version", version}});
        if (on_applied_) on_applied_(entity);
      });
}

void SyncDown::on_delta(const std::string& entity, const protocol::Envelope& e, protocol::Reply reply) {
  // The dispatcher has checked every change against the row's shape.
  std::vector<Change> changes;
  for (const auto& c : e.payload["changes"]) {
    Change change;
    change.upsert = c["op"] == "upsert";
    change.version = c["version"].get<std::int64_t>();
    if (change.upsert) {
      change.id = c["row"]["id"].get<std::string>();
      change.row = c["row"].dump();
    } else {
      change.id = c["id"].get<std::string>();
    }
    changes.push_back(std::move(change));
  }
  database_.run<DeltaOutcome>(
      [entity, changes = std::move(changes)](Session& s) -> Result<DeltaOutcome> {
        pqxx::work tx(s.conn());
        DeltaOutcome out;
        try {
          out = apply_changes(tx, *entity_spec(entity), changes);
        } catch (const pqxx::data_exception&) {
          return Error{Errc::invalid, "a change holds a value the database refuses; nothing was applied"};
        }
        tx.commit();
        return out;
      },
      [this, alive = std::weak_ptr<int>(alive_), entity, reply](Result<DeltaOutcome> r) mutable {
        if (alive.expired()) return;  // replaced (a re-pairing) while the database worked
        if (!r) {
          log_.error("A delta could not be applied; nothing of it was.", {{"entity", entity}, {"reason", r.error().message}});
          return reply.error(r.error());
        }
        log_.debug("Applied a delta.", {{"entity", entity}, {"cursor", r.value().cursor},
                                        {"applied", r.value().applied}, {"skipped", r.value().skipped}});
        reply.send("ack", {{"cursor", r.value().cursor}});
        if (on_applied_) on_applied_(entity);
      });
}

}  // namespace secbox::replica
