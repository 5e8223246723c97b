#pragma once
// The cloud's sync messages (cloud-protocol §5) as a test sends them to a
// Dispatcher: a whole snapshot of one entity in one chunk, or a delta that
// upserts one row.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace secbox::testing {

inline std::string snapshot_message(const std::string& id, const std::string& entity,
                                    std::int64_t version, nlohmann::json rows) {
  return nlohmann::json{{"v", 1},
                        {"type", "snapshot." + entity},
                        {"id", id},
                        {"ts", "2026-12-04T10:00:00Z"},
                        {"payload",
                         {{"snapshotId", "s_" + entity},
                          {"version", version},
                          {"chunk", 1},
                          {"chunks", 1},
                          {"rows", std::move(rows)}}}}
      .dump();
}

inline std::string upsert_message(const std::string& id, const std::string& entity,
                                  std::int64_t version, nlohmann::json row) {
  return nlohmann::json{
      {"v", 1},
      {"type", "delta." + entity},
      {"id", id},
      {"ts", "2026-12-04T10:00:00Z"},
      {"payload",
       {{"changes", nlohmann::json::array(
                        {{{"op", "upsert"}, {"version", version}, {"row", std::move(row)}}})}}}}
      .dump();
}

}  // namespace secbox::testing
