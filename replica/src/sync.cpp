#include "replica/sync.hpp"

#include <pqxx/pqxx>

#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "entities.hpp"
#include "session.hpp"
#include "protocol/shapes.hpp"

namespace secbox::replica {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxRowsPerChunk = 5000;

// ---- on the database thread ----

// A checked row as the fields of its entity's table: id, version (the
// row's own, else the snapshot's), deleted = false, then its columns in
// spec order (a field the row lacks is null). COPY escapes them.
using Field = std::optional<std::string>;
using Fields = std::vector<Field>;

Field field_text(const json& v) {
  if (v.is_null()) return std::nullopt;
  return v.is_string() ? v.get<std::string>() : v.dump();
}

Fields table_fields(const EntitySpec& spec, const json& row, std::int64_t snapshot_version) {
  Fields out;
  out.reserve(3 + spec.columns.size());
  out.push_back(field_text(row["id"]));
  const auto version = row.find("version");
  out.push_back(version != row.end() && !version->is_null() ? field_text(*version)
                                                            : std::to_string(snapshot_version));
  out.emplace_back("f");
  for (const auto& c : spec.columns) {
    const auto it = row.find(c.field);
    out.push_back(it == row.end() ? std::nullopt : field_text(*it));
  }
  return out;
}

// libpqxx 6.4 writes COPY rows from tuples only: one of the row's width.
template <std::size_t... I>
void write_fields(pqxx::stream_to& copy, const Fields& f, std::index_sequence<I...>) {
  copy << std::make_tuple(f[I]...);
}

void write_row(pqxx::stream_to& copy, const Fields& f) {
  switch (f.size()) {
    case 5:
      return write_fields(copy, f, std::make_index_sequence<5>());
    case 6:
      return write_fields(copy, f, std::make_index_sequence<6>());
    case 7:
      return write_fields(copy, f, std::make_index_sequence<7>());
    case 8:
      return write_fields(copy, f, std::make_index_sequence<8>());
    case 9:
      return write_fields(copy, f, std::make_index_sequence<9>());
    case 10:
      return write_fields(copy, f, std::make_index_sequence<10>());
    case 11:
      return write_fields(copy, f, std::make_index_sequence<11>());
    default:
      throw std::logic_error("an entity of " + std::to_string(f.size()) + " columns");
  }
}

std::vector<std::string> copy_columns(const EntitySpec& spec) {
  std::vector<std::string> out{"id", "version", "deleted"};
  for (const auto& c : spec.columns) out.emplace_back(c.column);
  return out;
}

// What the chunks of one snapshot staged so far; touched only by its tasks
// on the database thread, which run one at a time in order.
struct Staging {
  std::int64_t rows = 0;         // committed into the next table
  std::optional<Error> refusal;  // the first chunk the database refused
};

// A snapshot is built in its entity's next table (the table's columns,
// constraints and indexes), one transaction per chunk as it arrives, so that
// the rows are typed, checked and indexed while the cloud is still sending.
// After the last chunk the next table takes the table's place: readers see
// the old set until that transaction commits, and wait only for the swap
// itself (a lock, a drop and a rename), whatever the size of the set.
void stage_chunk(pqxx::work& tx, const EntitySpec& spec, bool first,
                 const std::vector<Fields>& rows) {
  if (first) {
    tx.exec0("DROP TABLE IF EXISTS " + spec.next_table());
    tx.exec0("CREATE TABLE " + spec.next_table() + " (LIKE " + spec.table + " INCLUDING ALL)");
  }
  pqxx::stream_to copy(tx, spec.next_table(), copy_columns(spec));
  for (const auto& row : rows) write_row(copy, row);
  copy.complete();
}

// The next table becomes the entity's table and the cursor moves, in the
// caller's transaction. A reader that holds the table for more than the
// lock timeout fails the swap (the old set stays) rather than stall it.
// The indexes keep their names (LIKE names them after the next table), so
// that a later migration finds them as migrations/ wrote them.
void swap_in(pqxx::work& tx, const EntitySpec& spec, const std::string& snapshot_id,
             std::int64_t version) {
  tx.exec0("SET LOCAL lock_timeout = '10s'");
  tx.exec0(std::string("LOCK TABLE ") + spec.table + " IN ACCESS EXCLUSIVE MODE");
  const auto names = tx.exec_params(
      "SELECT o.relname, n.relname FROM pg_index oi JOIN pg_class o ON o.oid = oi.indexrelid"
      " JOIN pg_index ni ON ni.indrelid = $2::regclass AND ni.indkey::text = oi.indkey::text"
      "  AND ni.indisunique = oi.indisunique AND ni.indisprimary = oi.indisprimary"
      "  AND coalesce(pg_get_expr(ni.indpred, ni.indrelid), '') = coalesce(pg_get_expr(oi.indpred, "
      "oi.indrelid), '')"
      "  AND coalesce(pg_get_expr(ni.indexprs, ni.indrelid), '') = "
      "coalesce(pg_get_expr(oi.indexprs, oi.indrelid), '')"
      " JOIN pg_class n ON n.oid = ni.indexrelid WHERE oi.indrelid = $1::regclass",
      std::string(spec.table), spec.next_table());
  tx.exec0(std::string("DROP TABLE ") + spec.table);
  tx.exec0("ALTER TABLE " + spec.next_table() + " RENAME TO " + spec.table);
  for (const auto& row : names) {
    tx.exec0("ALTER INDEX " + tx.quote_name(row[1].as<std::string>()) + " RENAME TO " +
             tx.quote_name(row[0].as<std::string>()));
  }
  tx.exec_params0(
      "UPDATE sync_cursor SET version = $2, snapshot_version = $2, snapshot_id = $3,"
      " last_snapshot_at = now(), last_applied_at = now() WHERE entity = $1",
      std::string(spec.entity), version, snapshot_id);
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

DeltaOutcome apply_changes(pqxx::work& tx, const EntitySpec& spec,
                           const std::vector<Change>& changes) {
  const std::string entity = spec.entity;
  auto cursor_row = tx.exec_params1(
      "SELECT version, snapshot_version FROM sync_cursor WHERE entity = $1 FOR UPDATE", entity);
  DeltaOutcome out;
  out.cursor = cursor_row[0].as<std::int64_t>();
  const auto snapshot_version = cursor_row[1].as<std::int64_t>();
  const std::string table = spec.table;
  const std::string upsert =
      "INSERT INTO " + table + " (id, version, deleted, " + spec.column_list() + ") " +
      "SELECT $1, $2, false, " + spec.select_from_json() + " FROM (SELECT $3::jsonb AS r) s " +
      "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, deleted = false, " +
      spec.assignments(false);
  const std::string tombstone =
      "INSERT INTO " + table + " (id, version, deleted) VALUES ($1, $2, true) " +
      "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, deleted = true, " +
      spec.assignments(true);
  for (const auto& c : changes) {
    out.cursor = std::max(out.cursor, c.version);
    // A row's own version, or a tombstone's; for an id the table never held,
    // the last snapshot's.
    auto stored =
        tx.exec_params("SELECT version FROM " + table + " WHERE id = $1 FOR UPDATE", c.id);
    const std::int64_t current =
        stored.empty() ? snapshot_version : stored[0][0].as<std::int64_t>();
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
  tx.exec_params0("UPDATE sync_cursor SET version = $2, last_applied_at = now() WHERE entity = $1",
                  entity, out.cursor);
  return out;
}

// The payload's header fields, checked before anything else of a chunk.
std::optional<std::string> chunk_header_problem(const json& p) {
  auto is_int = [&](const char* k) { return p.contains(k) && p[k].is_number_integer(); };
  if (!p.contains("snapshotId") || !p["snapshotId"].is_string() ||
      !protocol::is_valid_id(p["snapshotId"].get<std::string>())) {
    return "snapshotId must be an id";
  }
  if (!is_int("version") || p["version"].get<std::int64_t>() < 0)
    return "version must be a non-negative integer";
  if (!is_int("chunk") || p["chunk"].get<std::int64_t>() < 1)
    return "chunk must be an integer from 1";
  if (!is_int("chunks") || p["chunks"].get<std::int64_t>() < 1)
    return "chunks must be an integer from 1";
  if (p["chunk"].get<std::int64_t>() > p["chunks"].get<std::int64_t>())
    return "chunk is above chunks";
  if (!p.contains("rows") || !p["rows"].is_array()) return "rows must be an array";
  return std::nullopt;
}

}  // namespace

struct SyncDown::Partial {
  std::string snapshot_id;
  std::int64_t version = 0;
  int chunks = 0;
  int next = 1;
  std::int64_t rows = 0;               // staged so far, checked before the swap
  std::optional<std::string> problem;  // the first, answered at the last chunk
  std::shared_ptr<Staging> staging = std::make_shared<Staging>();  // the database thread's
};

SyncDown::SyncDown(Database& database, protocol::Router& router) : database_(database) {
  for (const auto& spec : entity_specs()) {
    const std::string entity = spec.entity;
    router.on_request(
        "snapshot." + entity,
        [this, entity](const protocol::Envelope& e, protocol::Reply r) {
          on_snapshot(entity, e, std::move(r));
        },
        protocol::PayloadCheck::by_handler);
    router.on_request("delta." + entity,
                      [this, entity](const protocol::Envelope& e, protocol::Reply r) {
                        on_delta(entity, e, std::move(r));
                      });
  }
}

void SyncDown::drop_partial(const std::string& entity, const std::string& why) {
  if (partial_.erase(entity) > 0)
    log_.warn("Dropped a partial snapshot.", {{"entity", entity}, {"reason", why}});
  database_.run<int>(
      [entity](Session& s) -> Result<int> {
        pqxx::work tx(s.conn());
        tx.exec0("DROP TABLE IF EXISTS " + entity_spec(entity)->next_table());
        tx.commit();
        return 0;
      },
      [](Result<int>) {});
}

void SyncDown::on_snapshot(const std::string& entity, const protocol::Envelope& e,
                           protocol::Reply reply) {
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
      return reply.error(protocol::ErrorCode::invalid_args,
                         "snapshot " + snapshot_id + " chunk " + std::to_string(chunk) +
                             " arrived without its chunk 1; the partial snapshot was dropped");
    }
    slot = std::make_shared<Partial>();
    slot->snapshot_id = snapshot_id;
    slot->version = p["version"].get<std::int64_t>();
    slot->chunks = chunks;
  }
  auto partial = slot;
  if (chunk != partial->next || chunks != partial->chunks) {
    const std::string why =
        chunk != partial->next
            ? "expected chunk " + std::to_string(partial->next) + ", got " + std::to_string(chunk)
            : "chunks changed from " + std::to_string(partial->chunks) + " to " +
                  std::to_string(chunks);
    drop_partial(entity, why);
    return reply.error(protocol::ErrorCode::invalid_args, "snapshot " + snapshot_id + ": " + why +
                                                              "; the partial snapshot was dropped");
  }
  ++partial->next;
  const auto& rows = p["rows"];
  if (!partial->problem && rows.size() > kMaxRowsPerChunk) {
    partial->problem = "chunk " + std::to_string(chunk) + " has " + std::to_string(rows.size()) +
                       " rows; at most 5000 are allowed";
  }
  std::vector<Fields> staged;
  if (!partial->problem) {
    const auto* shape = protocol::shapes::row(entity);
    const auto* spec = entity_spec(entity);
    staged.reserve(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (auto problem = protocol::shapes::check(*shape, rows[i])) {
        partial->problem = "chunk " + std::to_string(chunk) + " row " + std::to_string(i) + ": " +
                           problem->describe();
        staged.clear();
        break;
      }
      staged.push_back(table_fields(*spec, rows[i], partial->version));
    }
  }
  const bool last = chunk == chunks;
  if (!last) reply.release();  // chunks 1..n-1 get no reply

  if (partial->problem) {
    if (!last) return;
    const auto problem = *partial->problem;
    drop_partial(entity, problem);
    log_.warn("Refused a snapshot with an invalid row; the old set stays.",
              {{"entity", entity}, {"problem", problem}});
    return reply.error(protocol::ErrorCode::invalid_args, problem);
  }
  if (last) partial_.erase(entity);

  const std::int64_t version = partial->version;
  partial->rows += static_cast<std::int64_t>(staged.size());
  const std::int64_t expected = partial->rows;
  database_.run<std::int64_t>(
      [entity, snapshot_id, chunk, last, version, expected, staging = partial->staging,
       staged = std::move(staged)](Session& s) -> Result<std::int64_t> {
        const auto& spec = *entity_spec(entity);
        if (!staging->refusal) {
          try {
            pqxx::work tx(s.conn());
            stage_chunk(tx, spec, chunk == 1, staged);
            tx.commit();
            staging->rows += static_cast<std::int64_t>(staged.size());
          } catch (const pqxx::unique_violation&) {
            staging->refusal =
                Error{Errc::invalid, "snapshot " + snapshot_id + " holds the same id twice"};
          } catch (const pqxx::data_exception&) {
            staging->refusal = Error{
                Errc::invalid, "snapshot " + snapshot_id + " holds a value the database refuses"};
          } catch (const pqxx::integrity_constraint_violation&) {
            staging->refusal = Error{
                Errc::invalid, "snapshot " + snapshot_id + " holds a row the database refuses"};
          }
        }
        if (!last)
          return staging->refusal ? Result<std::int64_t>(*staging->refusal)
                                  : Result<std::int64_t>(0);
        if (staging->refusal) return *staging->refusal;
        // A chunk lost to a broken connection must not leave a short set.
        if (staging->rows != expected) {
          return Error{Errc::internal,
                       "snapshot " + snapshot_id + " was not staged whole; the old set stays"};
        }
        pqxx::work tx(s.conn());
        swap_in(tx, spec, snapshot_id, version);
        tx.commit();
        return staging->rows;
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
        log_.info("Applied a snapshot.",
                  {{"entity", entity}, {"version", version}, {"rows", r.value()}});
        reply.send("ack", {{"snapshotId", snapshot_id}, {"version", version}});
        if (on_applied_) on_applied_(entity);
      });
}

void SyncDown::on_delta(const std::string& entity, const protocol::Envelope& e,
                        protocol::Reply reply) {
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
          return Error{Errc::invalid,
                       "a change holds a value the database refuses; nothing was applied"};
        }
        tx.commit();
        return out;
      },
      [this, alive = std::weak_ptr<int>(alive_), entity, reply](Result<DeltaOutcome> r) mutable {
        if (alive.expired()) return;  // replaced (a re-pairing) while the database worked
        if (!r) {
          log_.error("A delta could not be applied; nothing of it was.",
                     {{"entity", entity}, {"reason", r.error().message}});
          return reply.error(r.error());
        }
        log_.debug("Applied a delta.", {{"entity", entity},
                                        {"cursor", r.value().cursor},
                                        {"applied", r.value().applied},
                                        {"skipped", r.value().skipped}});
        reply.send("ack", {{"cursor", r.value().cursor}});
        if (on_applied_) on_applied_(entity);
      });
}

}  // namespace secbox::replica
