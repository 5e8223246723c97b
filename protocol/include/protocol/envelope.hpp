#pragma once
// The tunnel's message envelope (cloud-protocol §4.1): text frames carry one
// JSON object {"v":1,"type","id","ts","re"?,"payload"?}; binary frames carry a
// 4-byte big-endian header length, a JSON header, then the body.
//
// Pure functions; any thread. Parsing never throws: bad input becomes a
// Malformed value whose message goes back to the cloud as `bad_message`.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "protocol/errors.hpp"

namespace secbox::protocol {

constexpr int kProtocolVersion = 1;

struct Envelope {
  std::string type;
  std::string id;
  std::string ts;                                     // RFC 3339; as received (not validated)
  std::optional<std::string> re;                      // replies only
  nlohmann::json payload = nlohmann::json::object();  // absent or null → {}
};

struct Malformed {
  std::optional<std::string> re;  // the message's id, when it had a usable one
  std::string message;            // what is wrong, for the `bad_message` reply
};

// 1–128 characters of [A-Za-z0-9_.:-].
bool is_valid_id(std::string_view id);

std::variant<Envelope, Malformed> parse_envelope(std::string_view text);

// {"v":1,"type","id","ts","re"?,"payload"}, keys in that order.
std::string serialize(const Envelope& envelope);
// The same with a payload already serialized (a JSON object's text, which the
// caller guarantees: the queue's events as PostgreSQL wrote them), spliced in
// without being parsed again.
std::string serialize_with_payload(const Envelope& envelope, std::string_view payload_json);

// The `error` reply of §4.1: payload {"code","message"}, `re` when known.
Envelope error_message(std::string id, std::string ts, std::optional<std::string> re,
                       ErrorCode code, std::string_view message);

enum class BinaryType { frigate_snapshot_result, frigate_frame };

struct BinaryHeader {
  BinaryType type = BinaryType::frigate_frame;
  std::optional<std::string> re;
  std::optional<std::string> stream;
  std::optional<std::uint64_t> seq;
  std::string content_type = "image/jpeg";
};

std::string_view binary_type_name(BinaryType type);

// Frames larger than the tunnel's 16 MiB limit are refused by the caller.
std::string encode_binary(const BinaryHeader& header, std::string_view body);

struct BinaryFrame {
  BinaryHeader header;
  std::string_view body;  // points into the decoded input
};

// Error code "bad_message" with what is wrong.
Result<BinaryFrame> decode_binary(std::string_view frame);

}  // namespace secbox::protocol
