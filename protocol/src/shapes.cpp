#include "protocol/shapes.hpp"

#include <algorithm>
#include <functional>
#include <map>

#include "common/pin_hash.hpp"
#include "common/time.hpp"
#include "protocol/envelope.hpp"

namespace secbox::protocol::shapes {

using json = nlohmann::json;

namespace {

enum class Kind {
  string,
  id,
  time,
  integer,
  number,
  boolean,
  object,
  map,
  array,
  tagged,
  any_object
};

}  // namespace

struct Member {
  std::string name;
  ShapePtr shape;
  bool required = true;
};

class Shape {
 public:
  Kind kind = Kind::any_object;
  std::vector<std::string> allowed;                       // string enums
  std::function<bool(std::string_view)> string_rule;      // extra rule for strings
  std::string rule_text;                                  // what the rule asks, for people
  std::vector<Member> members;                            // object
  ShapePtr item;                                          // array items, map values
  std::string tag;                                        // tagged: the discriminating member
  std::map<std::string, ShapePtr, std::less<>> variants;  // tagged: tag value → object shape
  std::optional<double> min;                              // numbers
  std::optional<double> max;
};

namespace {

// 30 rather than 30.0 when the bound is whole.
std::string number_text(double d) {
  if (d == static_cast<double>(static_cast<long long>(d)))
    return std::to_string(static_cast<long long>(d));
  return json(d).dump();
}

std::string join_path(const std::string& base, std::string_view member) {
  return base.empty() ? std::string(member) : base + "." + std::string(member);
}

std::string index_path(const std::string& base, std::size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

const char* kind_words(Kind k) {
  switch (k) {
    case Kind::string:
      return "must be a string";
    case Kind::id:
      return "must be an id (1-128 characters of A-Z a-z 0-9 _ . : -)";
    case Kind::time:
      return "must be an RFC 3339 time";
    case Kind::integer:
      return "must be an integer";
    case Kind::number:
      return "must be a number";
    case Kind::boolean:
      return "must be true or false";
    case Kind::array:
      return "must be an array";
    case Kind::object:
    case Kind::map:
    case Kind::tagged:
    case Kind::any_object:
      return "must be an object";
  }
  return "has the wrong type";
}

std::optional<Problem> check_at(const Shape& s, const json& v, const std::string& path) {
  auto fail = [&](std::string message) { return Problem{path, std::move(message)}; };
  switch (s.kind) {
    case Kind::string:
    case Kind::id:
    case Kind::time: {
      if (!v.is_string()) return fail(kind_words(s.kind));
      const auto& text = v.get_ref<const std::string&>();
      if (s.kind == Kind::id && !is_valid_id(text)) return fail(kind_words(s.kind));
      if (s.kind == Kind::time && !parse_rfc3339(text)) return fail(kind_words(s.kind));
      if (!s.allowed.empty() &&
          std::find(s.allowed.begin(), s.allowed.end(), text) == s.allowed.end()) {
        std::string words = "must be one of";
        for (std::size_t i = 0; i < s.allowed.size(); ++i) words += (i ? ", " : " ") + s.allowed[i];
        return fail(words);
      }
      if (s.string_rule && !s.string_rule(text)) return fail(s.rule_text);
      return std::nullopt;
    }
    case Kind::integer:
    case Kind::number: {
      const bool ok = s.kind == Kind::integer ? (v.is_number_integer()) : v.is_number();
      if (!ok) return fail(kind_words(s.kind));
      const double d = v.get<double>();
      if ((s.min && d < *s.min) || (s.max && d > *s.max)) {
        return fail("must be between " + number_text(s.min.value_or(d)) + " and " +
                    number_text(s.max.value_or(d)));
      }
      return std::nullopt;
    }
    case Kind::boolean:
      if (!v.is_boolean()) return fail(kind_words(s.kind));
      return std::nullopt;
    case Kind::any_object:
      if (!v.is_object()) return fail(kind_words(s.kind));
      return std::nullopt;
    case Kind::map: {
      if (!v.is_object()) return fail(kind_words(s.kind));
      for (const auto& [key, value] : v.items()) {
        if (auto p = check_at(*s.item, value, join_path(path, key))) return p;
      }
      return std::nullopt;
    }
    case Kind::array: {
      if (!v.is_array()) return fail(kind_words(s.kind));
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (auto p = check_at(*s.item, v[i], index_path(path, i))) return p;
      }
      return std::nullopt;
    }
    case Kind::object: {
      if (!v.is_object()) return fail(kind_words(s.kind));
      for (const auto& m : s.members) {
        auto it = v.find(m.name);
        const std::string member_path = join_path(path, m.name);
        if (it == v.end() || it->is_null()) {
          if (m.required) return Problem{member_path, "is required"};
          continue;
        }
        if (auto p = check_at(*m.shape, *it, member_path)) return p;
      }
      return std::nullopt;
    }
    case Kind::tagged: {
      if (!v.is_object()) return fail(kind_words(s.kind));
      auto it = v.find(s.tag);
      const std::string tag_path = join_path(path, s.tag);
      if (it == v.end() || !it->is_string()) return Problem{tag_path, "is required"};
      auto variant = s.variants.find(it->get_ref<const std::string&>());
      if (variant == s.variants.end()) {
        std::string words = "must be one of";
        bool first = true;
        for (const auto& [name, shape] : s.variants) {
          words += (first ? " " : ", ") + name;
          first = false;
        }
        return Problem{tag_path, words};
      }
      return check_at(*variant->second, v, path);
    }
  }
  return std::nullopt;
}

void unknown_at(const Shape& s, const json& v, const std::string& path,
                std::vector<std::string>& out) {
  switch (s.kind) {
    case Kind::object:
      if (!v.is_object()) return;
      for (const auto& [key, value] : v.items()) {
        const std::string& name = key;  // clang cannot capture a structured binding (C++17)
        auto m = std::find_if(s.members.begin(), s.members.end(),
                              [&](const Member& member) { return member.name == name; });
        if (m == s.members.end()) {
          out.push_back(join_path(path, key));
        } else if (!value.is_null()) {
          unknown_at(*m->shape, value, join_path(path, key), out);
        }
      }
      return;
    case Kind::tagged: {
      if (!v.is_object()) return;
      auto it = v.find(s.tag);
      if (it == v.end() || !it->is_string()) return;
      auto variant = s.variants.find(it->get_ref<const std::string&>());
      if (variant != s.variants.end()) unknown_at(*variant->second, v, path, out);
      return;
    }
    case Kind::array:
      if (!v.is_array()) return;
      for (std::size_t i = 0; i < v.size(); ++i)
        unknown_at(*s.item, v[i], index_path(path, i), out);
      return;
    case Kind::map:
      if (!v.is_object()) return;
      for (const auto& [key, value] : v.items())
        unknown_at(*s.item, value, join_path(path, key), out);
      return;
    default:
      return;
  }
}

// ---- building shapes ----

ShapePtr make(Kind k) {
  auto s = std::make_shared<Shape>();
  s->kind = k;
  return s;
}
ShapePtr str() { return make(Kind::string); }
ShapePtr id() { return make(Kind::id); }
ShapePtr time() { return make(Kind::time); }
ShapePtr integer(std::optional<double> min = std::nullopt,
                 std::optional<double> max = std::nullopt) {
  auto s = std::make_shared<Shape>();
  s->kind = Kind::integer;
  s->min = min;
  s->max = max;
  return s;
}
ShapePtr count() { return integer(0.0, 9007199254740991.0); }
ShapePtr number() { return make(Kind::number); }
ShapePtr boolean() { return make(Kind::boolean); }
ShapePtr one_of(std::vector<std::string> allowed) {
  auto s = std::make_shared<Shape>();
  s->kind = Kind::string;
  s->allowed = std::move(allowed);
  return s;
}
ShapePtr rule(std::function<bool(std::string_view)> f, std::string words) {
  auto s = std::make_shared<Shape>();
  s->kind = Kind::string;
  s->string_rule = std::move(f);
  s->rule_text = std::move(words);
  return s;
}
ShapePtr array(ShapePtr item) {
  auto s = std::make_shared<Shape>();
  s->kind = Kind::array;
  s->item = std::move(item);
  return s;
}
ShapePtr map_of(ShapePtr value) {
  auto s = std::make_shared<Shape>();
  s->kind = Kind::map;
  s->item = std::move(value);
  return s;
}
Member req(std::string name, ShapePtr shape) {
  return Member{std::move(name), std::move(shape), true};
}
Member opt(std::string name, ShapePtr shape) {
  return Member{std::move(name), std::move(shape), false};
}
ShapePtr object(std::vector<Member> members) {
  auto s = std::make_shared<Shape>();
  s->kind = Kind::object;
  s->members = std::move(members);
  return s;
}
ShapePtr tagged(std::string tag, std::map<std::string, ShapePtr, std::less<>> variants) {
  auto s = std::make_shared<Shape>();
  s->kind = Kind::tagged;
  s->tag = std::move(tag);
  s->variants = std::move(variants);
  return s;
}

struct Registry {
  std::map<std::string, ShapePtr, std::less<>> messages;
  std::map<std::string, ShapePtr, std::less<>> rows;
  std::map<std::string, ShapePtr, std::less<>> events;
  std::vector<std::string> entities{"community", "unit", "user", "guest_authorization",
                                    "banned_visitor"};

  Registry() {
    // §5 rows. A snapshot row may carry its own version.
    auto v = opt("version", count());
    rows["community"] = object({req("id", id()), req("name", str()), req("timezone", str()), v});
    rows["unit"] = object({req("id", id()), req("communityId", id()), req("label", str()), v});
    rows["user"] =
        object({req("id", id()), req("communityId", id()),
                req("role", one_of({"guard", "admin", "resident"})), req("displayName", str()),
                opt("pinHash",
                    rule(is_valid_pin_hash,
                         "must be pbkdf2-sha256$<10000 to 2000000 iterations>$<salt ≥ 16 bytes, "
                         "base64>$<32-byte hash, base64>")),
                v});
    rows["guest_authorization"] = object(
        {req("id", id()), req("communityId", id()), req("unitId", id()), req("guestName", str()),
         opt("plate", str()), req("validFrom", time()), req("validUntil", time()),
         opt("maxEntries", count()), req("status", one_of({"active", "revoked", "used"})), v});
    rows["banned_visitor"] =
        object({req("id", id()), req("communityId", id()), req("fullName", str()),
                opt("plate", str()), opt("photoUrl", str()), req("reason", str()),
                req("createdAt", time()), opt("expiresAt", time()), v});

    for (const auto& entity : entities) {
      messages["snapshot." + entity] =
          object({req("snapshotId", id()), req("version", count()), req("chunk", integer(1, 1e9)),
                  req("chunks", integer(1, 1e9)), req("rows", array(rows[entity]))});
      messages["delta." + entity] = object(
          {req("changes",
               array(tagged("op", {{"upsert", object({req("op", str()), req("version", count()),
                                                      req("row", rows[entity])})},
                                   {"delete", object({req("op", str()), req("version", count()),
                                                      req("id", id())})}})))});
    }

    // §6 events.
    events["visitor_entry"] =
        object({opt("guestAuthorizationId", id()), opt("unitId", id()), req("name", str()),
                opt("plate", str()), req("guardId", id()),
                req("decision", one_of({"allowed", "denied"})), opt("reason", str())});
    events["ban_hit"] =
        object({req("bannedVisitorId", id()), opt("camera", str()), opt("plate", str()),
                opt("source", one_of({"guard", "camera"})), opt("frigateEventId", str()),
                opt("read", str()), opt("score", number())});
    events["frigate_event"] =
        object({req("camera", str()), req("label", str()), req("score", number()),
                req("startTime", time()), opt("endTime", time())});
    events["guard_note"] = object({req("guardId", id()), req("text", str())});
    events["compose_result"] = object(
        {req("project", str()), req("ok", boolean()), req("phase", str()), req("detail", str())});
    events["update_result"] =
        object({req("fromVersion", str()), req("toVersion", str()), req("ok", boolean()),
                req("phase", one_of({"manifest", "download", "verify", "stage", "switch", "trial",
                                     "rollback", "rollback-failed", "done"})),
                req("detail", str())});
    std::map<std::string, ShapePtr, std::less<>> event_variants;
    for (const auto& [type, data] : events) {
      event_variants[type] = object({req("clientId", id()), req("type", str()),
                                     req("occurredAt", time()), req("data", data)});
    }

    auto queue = object({req("depth", count()), opt("oldestAt", time())});
    auto cpu = object({req("load1", number()), req("usagePct", number())});
    auto memory = object({req("totalBytes", count()), req("availableBytes", count())});
    auto disk =
        array(object({req("path", str()), req("totalBytes", count()), req("freeBytes", count())}));
    auto containers =
        array(object({req("name", str()), req("state", str()), opt("health", str())}));
    auto exec_result = std::vector<Member>{req("jobId", id()),         req("exitCode", integer()),
                                           req("stdout", str()),       req("stderr", str()),
                                           req("durationMs", count()), req("timedOut", boolean())};

    // §4
    messages["error"] =
        object({req("code", one_of({"bad_message", "invalid_args", "not_found", "forbidden",
                                    "unavailable", "busy", "internal"})),
                req("message", str())});
    messages["hello"] = object({req("deviceId", id()), req("version", str()), req("bootId", id()),
                                req("cursors", map_of(count())), req("queue", queue)});
    messages["welcome"] = object({req("serverTime", time()), opt("resync", array(one_of(entities))),
                                  opt("lan", object({req("name", str())}))});
    // §5, §6
    messages["ack"] = object({});
    messages["ack.snapshot"] = object({req("snapshotId", id()), req("version", count())});
    messages["ack.delta"] = object({req("cursor", count())});
    messages["events.batch"] = object({req("events", array(tagged("type", event_variants)))});
    messages["events.ack"] = object({req("clientIds", array(id()))});
    // §7.1
    messages["health.report"] = object(
        {req("uptimeS", count()), req("version", str()), req("bootId", id()), req("state", str()),
         req("cpu", cpu), req("memory", memory), req("disk", disk), req("containers", containers),
         req("queue", queue),
         req("tunnel", object({req("reconnects", count()), opt("rttMs", number())})),
         req("media", array(object({req("camera", str()),
                                    req("state", one_of({"starting", "live", "stalled", "failed"})),
                                    opt("fps", number()), opt("lastSegmentAt", time())}))),
         req("jwt", object({opt("expiresAt", time())})), opt("clockSkewS", number()),
         opt("lanCert",
             object({req("name", str()), req("notAfter", time()), req("trusted", boolean())}))});
    // §7.2
    messages["frigate.snapshot"] = object({req("camera", str()), opt("height", integer(1, 4320))});
    messages["frigate.stream.start"] =
        object({req("camera", str()), req("fps", integer(1, 30)), opt("height", integer(1, 4320))});
    messages["frigate.stream.started"] = object({req("streamId", id())});
    messages["frigate.stream.stop"] = object({req("streamId", id())});
    messages["frigate.stream.keepalive"] = object({req("streamId", id())});
    // §7.3
    messages["compose.snapshot"] = object({req("project", str()), req("yaml", str())});
    messages["compose.result"] =
        object({req("ok", boolean()), req("phase", str()), req("detail", str())});
    // §7.4
    messages["exec.run"] =
        object({req("tool", str()), req("command", str()), req("args", map_of(str()))});
    messages["exec.accepted"] = object({req("jobId", id())});
    messages["exec.result"] = object(exec_result);
    auto job = std::vector<Member>{req("jobId", id()), req("state", one_of({"running", "done"}))};
    for (auto m : exec_result) {
      if (m.name == "jobId") continue;
      m.required = false;  // present once done
      job.push_back(std::move(m));
    }
    messages["exec.job"] = object({req("jobId", id())});
    messages["exec.job.result"] = object(job);
    // §7.5
    auto kinds = one_of({"host", "cpu", "memory", "disk", "network"});
    messages["metrics.get"] = object({opt("kinds", array(kinds))});
    messages["metrics.result"] =
        object({opt("host", object({req("hostname", str()), req("uptimeS", count())})),
                opt("cpu", cpu), opt("memory", memory), opt("disk", disk),
                opt("network", array(object({req("interface", str()), req("rxBytes", count()),
                                             req("txBytes", count())})))});
    messages["containers.list"] = object({});
    messages["containers.result"] = object({req("containers", containers)});
    messages["containers.restart"] = object({req("name", str())});
    messages["units.status"] = object({req("name", str())});
    messages["units.restart"] = object({req("name", str())});
    messages["journal.tail"] = object({req("unit", str()), opt("lines", integer(1, 10000))});
    // Not named by the contract (docs/wire-format.md §7.5).
    messages["units.result"] =
        object({req("name", str()), req("loadState", str()), req("activeState", str()),
                req("subState", str()), opt("description", str()), opt("since", str())});
    messages["journal.result"] =
        object({req("unit", str()), req("lines", array(str())), req("truncated", boolean())});
    auto env_key = rule(
        [](std::string_view k) {
          if (k.empty() || k.size() > 128 || !(k[0] >= 'A' && k[0] <= 'Z')) return false;
          return std::all_of(k.begin(), k.end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
          });
        },
        "must match ^[A-Z][A-Z0-9_]*$");
    messages["env.set"] = object({req("key", env_key), req("value", str())});
    messages["env.unset"] = object({req("key", env_key)});
    messages["jwt.rotate"] = object({});
    // §7.6
    messages["update.apply"] =
        object({req("manifest", str()), req("signature", str()), req("url", str())});
    // §7.7
    messages["lan_cert.request"] = object({req("csr", str())});
    messages["lan_cert.install"] = object({req("chain", str())});
  }
};

const Registry& registry() {
  static const Registry r;
  return r;
}

template <class Map>
const Shape* find(const Map& map, std::string_view name) {
  auto it = map.find(name);
  return it == map.end() ? nullptr : it->second.get();
}

}  // namespace

std::string Problem::describe() const {
  return path.empty() ? "payload " + message : path + " " + message;
}

std::optional<Problem> check(const Shape& shape, const json& value) {
  return check_at(shape, value, "");
}

std::vector<std::string> unknown_fields(const Shape& shape, const json& value) {
  std::vector<std::string> out;
  unknown_at(shape, value, "", out);
  return out;
}

const Shape* message(std::string_view name) { return find(registry().messages, name); }
const Shape* row(std::string_view entity) { return find(registry().rows, entity); }
const Shape* event_data(std::string_view type) { return find(registry().events, type); }

std::vector<std::string> message_names() {
  std::vector<std::string> names;
  for (const auto& [name, shape] : registry().messages) names.push_back(name);
  return names;
}

const std::vector<std::string>& entities() { return registry().entities; }

bool is_valid_pin_hash(std::string_view text) { return parse_pin_hash(text).has_value(); }

}  // namespace secbox::protocol::shapes
