#pragma once
// The payload shapes of every message of the cloud protocol (§4–§7), the rows
// of §5 and the events of §6, written once and used both ways: incoming
// requests are checked before their handler sees them (a failure names the
// field, for `error invalid_args`), and the golden contract test holds the
// examples in tests/golden/ to them, so a change to the wire shape fails CI.
//
// A field that is not required may be absent or null (cloud-protocol §1).
// Fields a shape does not name are allowed on receipt (the cloud may add
// some); unknown_fields() lists them for the contract test.
//
// Immutable after construction; any thread.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace secbox::protocol::shapes {

class Shape;
using ShapePtr = std::shared_ptr<const Shape>;

struct Problem {
  std::string path;              // "changes[2].row.plate"; "" for the payload itself
  std::string message;           // "must be a string"
  std::string describe() const;  // "changes[2].row.plate must be a string"
};

// Checks `value` against `shape`; the first problem found, if any.
std::optional<Problem> check(const Shape& shape, const nlohmann::json& value);

// Paths of object members the shape does not name (for the contract test).
std::vector<std::string> unknown_fields(const Shape& shape, const nlohmann::json& value);

// The shape of a message type's payload. Replies that differ by what they
// answer are named after it: "ack.snapshot", "ack.delta"; plain "ack" is the
// empty one. Null for a type the protocol does not have.
const Shape* message(std::string_view name);

// The rows of §5 by entity ("banned_visitor", …); null for another name.
const Shape* row(std::string_view entity);

// The `data` of an outbound event of §6 by event type; null for another.
const Shape* event_data(std::string_view type);

// Every message name message() knows, sorted.
std::vector<std::string> message_names();

// The five entities of §5, in the order the replica lists them.
const std::vector<std::string>& entities();

// `pbkdf2-sha256$<iterations ≥ 10000>$<salt, padded base64, ≥ 16 bytes>$<hash,
// padded base64, 32 bytes>` (§5).
bool is_valid_pin_hash(std::string_view text);

}  // namespace secbox::protocol::shapes
