#include "protocol/envelope.hpp"

#include <algorithm>

namespace secbox::protocol {
namespace {

using json = nlohmann::json;

// Headers are small; a larger one is garbage, not a frame.
constexpr std::size_t kMaxBinaryHeader = 64 * 1024;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  });
}

std::variant<Envelope, Malformed> parse_envelope(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Malformed{std::nullopt, "not JSON"};
  if (!j.is_object()) return Malformed{std::nullopt, "not a JSON object"};

  std::optional<std::string> usable_id;
  auto id = j.find("id");
  if (id != j.end() && id->is_string() && is_valid_id(id->get_ref<const std::string&>())) {
    usable_id = id->get<std::string>();
  }
  auto bad = [&](std::string message) -> std::variant<Envelope, Malformed> {
    return Malformed{usable_id, std::move(message)};
  };

  auto v = j.find("v");
  if (v == j.end()) return bad("no \"v\"");
  if (!v->is_number_integer() || v->get<std::int64_t>() != kProtocolVersion) {
    return bad("\"v\" is not 1");
  }
  auto type = j.find("type");
  if (type == j.end()) return bad("no \"type\"");
  if (!type->is_string()) return bad("\"type\" is not a string");
  if (type->get_ref<const std::string&>().empty()) return bad("\"type\" is empty");
  if (id == j.end()) return bad("no \"id\"");
  if (!id->is_string()) return bad("\"id\" is not a string");
  if (!usable_id) return bad("\"id\" is not 1-128 characters of [A-Za-z0-9_.:-]");

  Envelope e;
  e.type = type->get<std::string>();
  e.id = *usable_id;
  if (auto ts = j.find("ts"); ts != j.end() && ts->is_string()) e.ts = ts->get<std::string>();
  if (auto re = j.find("re"); re != j.end() && !re->is_null()) {
    if (!re->is_string()) return bad("\"re\" is not a string");
    e.re = re->get<std::string>();
  }
  // §4.1: an absent payload means {}; one that is present, null included,
  // must be an object.
  if (auto payload = j.find("payload"); payload != j.end()) {
    if (!payload->is_object()) return bad("\"payload\" is not an object");
    e.payload = std::move(*payload);
  }
  return e;
}

std::string serialize(const Envelope& e) {
  nlohmann::ordered_json j;
  j["v"] = kProtocolVersion;
  j["type"] = e.type;
  j["id"] = e.id;
  j["ts"] = e.ts;
  if (e.re) j["re"] = *e.re;
  j["payload"] = e.payload.is_null() ? json::object() : e.payload;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string serialize_with_payload(const Envelope& e, std::string_view payload_json) {
  Envelope head = e;
  head.payload = json::object();
  std::string text = serialize(head);
  // The payload is the last member: the text ends with "payload":{}}.
  text.resize(text.size() - 3);
  text.reserve(text.size() + payload_json.size() + 1);
  text.append(payload_json);
  text.push_back('}');
  return text;
}

Envelope error_message(std::string id, std::string ts, std::optional<std::string> re,
                       ErrorCode code, std::string_view message) {
  Envelope e;
  e.type = "error";
  e.id = std::move(id);
  e.ts = std::move(ts);
  e.re = std::move(re);
  e.payload = json{{"code", wire_name(code)}, {"message", message}};
  return e;
}

std::string_view binary_type_name(BinaryType type) {
  return type == BinaryType::frigate_snapshot_result ? "frigate.snapshot.result" : "frigate.frame";
}

std::string encode_binary(const BinaryHeader& h, std::string_view body) {
  json j;
  j["type"] = binary_type_name(h.type);
  if (h.re) j["re"] = *h.re;
  if (h.stream) j["stream"] = *h.stream;
  if (h.seq) j["seq"] = *h.seq;
  j["contentType"] = h.content_type;
  const std::string header = dump(j);
  const auto n = static_cast<std::uint32_t>(header.size());
  std::string out;
  out.reserve(4 + header.size() + body.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out += header;
  out += body;
  return out;
}

Result<BinaryFrame> decode_binary(std::string_view frame) {
  auto bad = [](std::string message) { return Error{Errc::invalid, std::move(message)}; };
  if (frame.size() < 4) return bad("binary frame shorter than its 4-byte header length");
  const auto* p = reinterpret_cast<const unsigned char*>(frame.data());
  const std::size_t n = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) |
                        (std::size_t{p[2]} << 8) | std::size_t{p[3]};
  if (n > frame.size() - 4) return bad("binary header length exceeds the frame");
  if (n > kMaxBinaryHeader) return bad("binary header larger than 64 KiB");
  const std::string_view header_text = frame.substr(4, n);
  json j = json::parse(header_text.begin(), header_text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("binary header is not a JSON object");
  BinaryFrame out;
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return bad("binary header has no \"type\"");
  if (*type == "frigate.snapshot.result") {
    out.header.type = BinaryType::frigate_snapshot_result;
  } else if (*type == "frigate.frame") {
    out.header.type = BinaryType::frigate_frame;
  } else {
    return bad("unknown binary frame type");
  }
  auto text = [&](const char* key, std::optional<std::string>& into) -> bool {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return true;
    if (!it->is_string()) return false;
    into = it->get<std::string>();
    return true;
  };
  if (!text("re", out.header.re)) return bad("binary header \"re\" is not a string");
  if (!text("stream", out.header.stream)) return bad("binary header \"stream\" is not a string");
  if (auto seq = j.find("seq"); seq != j.end() && !seq->is_null()) {
    if (!seq->is_number_unsigned()) return bad("binary header \"seq\" is not a counter");
    out.header.seq = seq->get<std::uint64_t>();
  }
  auto ct = j.find("contentType");
  if (ct == j.end() || !ct->is_string()) return bad("binary header has no \"contentType\"");
  out.header.content_type = ct->get<std::string>();
  out.body = frame.substr(4 + n);
  return out;
}

}  // namespace secbox::protocol
