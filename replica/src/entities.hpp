#pragma once
// The five entities of cloud-protocol §5 as the database holds them: table,
// and each JSON field's column and SQL type. The SQL that moves a row from the
// cloud's JSON into its columns is built from this one table, for snapshots
// and deltas alike. Private to replica/.
#include <cstddef>
#include <string>
#include <vector>

namespace secbox::replica {

struct ColumnSpec {
  const char* field;   // JSON (camelCase)
  const char* column;  // SQL (snake_case)
  const char* type;    // "text", "timestamptz", "integer"
};

struct EntitySpec {
  const char* entity;  // the protocol's name
  const char* table;
  std::vector<ColumnSpec> columns;  // besides id, version, deleted

  // `<column>, …` in spec order.
  std::string column_list() const {
    std::string out;
    for (const auto& c : columns) out += std::string(out.empty() ? "" : ", ") + c.column;
    return out;
  }
  // The values of a JSON row named `r`, in spec order.
  std::string select_from_json() const {
    std::string out;
    for (const auto& c : columns) {
      std::string e = std::string("(r->>'") + c.field + "')";
      if (std::string(c.type) != "text") e += std::string("::") + c.type;
      out += (out.empty() ? "" : ", ") + e;
    }
    return out;
  }
  // The table a snapshot is built in as its chunks arrive, with the
  // entity's columns, constraints and indexes; after the last chunk it
  // takes the table's place (replica/src/sync.cpp).
  std::string next_table() const { return std::string(table) + "_next"; }
  // `c = EXCLUDED.c, …` (upsert) or `c = NULL, …` (tombstone).
  std::string assignments(bool to_null) const {
    std::string out;
    for (const auto& c : columns) {
      out += std::string(out.empty() ? "" : ", ") + c.column + " = " +
             (to_null ? std::string("NULL") : std::string("EXCLUDED.") + c.column);
    }
    return out;
  }
};

inline const std::vector<EntitySpec>& entity_specs() {
  static const std::vector<EntitySpec> specs{
      {"community", "community", {{"name", "name", "text"}, {"timezone", "timezone", "text"}}},
      {"unit", "unit", {{"communityId", "community_id", "text"}, {"label", "label", "text"}}},
      {"user",
       "app_user",
       {{"communityId", "community_id", "text"},
        {"role", "role", "text"},
        {"displayName", "display_name", "text"},
        {"pinHash", "pin_hash", "text"}}},
      {"guest_authorization",
       "guest_authorization",
       {{"communityId", "community_id", "text"},
        {"unitId", "unit_id", "text"},
        {"guestName", "guest_name", "text"},
        {"plate", "plate", "text"},
        {"validFrom", "valid_from", "timestamptz"},
        {"validUntil", "valid_until", "timestamptz"},
        {"maxEntries", "max_entries", "integer"},
        {"status", "status", "text"}}},
      {"banned_visitor",
       "banned_visitor",
       {{"communityId", "community_id", "text"},
        {"fullName", "full_name", "text"},
        {"plate", "plate", "text"},
        {"photoUrl", "photo_url", "text"},
        {"reason", "reason", "text"},
        {"createdAt", "created_at", "timestamptz"},
        {"expiresAt", "expires_at", "timestamptz"}}},
  };
  return specs;
}

inline const EntitySpec* entity_spec(const std::string& entity) {
  for (const auto& s : entity_specs()) {
    if (entity == s.entity) return &s;
  }
  return nullptr;
}

}  // namespace secbox::replica
