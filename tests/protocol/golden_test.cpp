// The wire contract: tests/golden/ holds one message per type of the cloud
// protocol, both directions. Each must parse through the project's envelope,
// re-serialise to the same JSON, and match the project's shape for its type
// field by field (protocol/shapes.hpp), so a change to the wire shape fails here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "protocol/envelope.hpp"
#include "protocol/shapes.hpp"

namespace secbox::protocol {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const fs::path kGolden = fs::path(SECBOX_TEST_SOURCE_DIR) / "tests/golden";

TEST(Golden, EveryMessageRoundTripsThroughTheEnvelope) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kGolden / "messages")) {
    const auto text = read(entry.path());
    auto parsed = parse_envelope(text);
    ASSERT_TRUE(std::holds_alternative<Envelope>(parsed))
        << entry.path() << ": " << std::get<Malformed>(parsed).message;
    const auto& e = std::get<Envelope>(parsed);
    // The file is named after its type (ack.snapshot.json is an `ack`).
    EXPECT_EQ(entry.path().stem().string().rfind(e.type, 0), 0u) << entry.path();
    EXPECT_EQ(json::parse(serialize(e)), json::parse(text)) << entry.path();
    ++files;
  }
  EXPECT_GE(files, 40);
}

// Every leaf and container of `value`, each replaced by a value of another
// JSON type: (path, mutated payload).
void mutations(const json& root, const json::json_pointer& at,
               std::vector<std::pair<std::string, json>>& out) {
  const json& v = root.at(at);
  if (at != json::json_pointer() && !v.is_null()) {
    json wrong = v.is_string() ? json(12345) : json("not-that-type");
    json copy = root;
    copy[at] = wrong;
    out.emplace_back(at.to_string(), std::move(copy));
  }
  if (v.is_object()) {
    for (const auto& [key, child] : v.items()) mutations(root, at / key, out);
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) mutations(root, at / i, out);
  }
}

TEST(Golden, EveryMessageMatchesItsShapeExactly) {
  std::set<std::string> seen;
  for (const auto& entry : fs::directory_iterator(kGolden / "messages")) {
    const auto name = entry.path().stem().string();  // "ack.snapshot", "hello"
    const auto payload = json::parse(read(entry.path())).at("payload");
    const auto* shape = shapes::message(name);
    ASSERT_NE(shape, nullptr) << name << " has no shape";
    auto problem = shapes::check(*shape, payload);
    EXPECT_FALSE(problem) << name << ": " << problem->describe();
    EXPECT_EQ(shapes::unknown_fields(*shape, payload), std::vector<std::string>{}) << name;
    seen.insert(name);
  }
  // Both directions: every shape the project knows has its example.
  for (const auto& name : shapes::message_names())
    EXPECT_TRUE(seen.count(name)) << name << " lacks a golden file";
}

TEST(Golden, EveryFieldIsConstrained) {
  // A field of the wrong JSON type anywhere in any example is refused, and
  // the problem names where it is.
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(kGolden / "messages")) {
    const auto name = entry.path().stem().string();
    const auto payload = json::parse(read(entry.path())).at("payload");
    std::vector<std::pair<std::string, json>> mutated;
    mutations(payload, json::json_pointer(), mutated);
    for (const auto& [path, bad] : mutated) {
      auto problem = shapes::check(*shapes::message(name), bad);
      EXPECT_TRUE(problem) << name << ": " << path << " accepted with the wrong type";
      ++checked;
    }
  }
  EXPECT_GT(checked, 200);
}

TEST(Golden, RequiredFieldsAreRequiredAndNamed) {
  auto payload =
      json::parse(read(kGolden / "messages/delta.guest_authorization.json")).at("payload");
  payload["changes"][0]["row"].erase("validFrom");
  auto problem = shapes::check(*shapes::message("delta.guest_authorization"), payload);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->describe(), "changes[0].row.validFrom is required");

  payload = json::parse(read(kGolden / "messages/delta.guest_authorization.json")).at("payload");
  payload["changes"][0]["row"]["plate"] = nullptr;   // nullable
  payload["changes"][0]["row"].erase("maxEntries");  // nullable, so may be absent
  EXPECT_FALSE(shapes::check(*shapes::message("delta.guest_authorization"), payload));

  payload["changes"][1]["op"] = "merge";
  problem = shapes::check(*shapes::message("delta.guest_authorization"), payload);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->describe(), "changes[1].op must be one of delete, upsert");
}

TEST(Golden, PinHashForm) {
  const std::string salt = "c2FsdHNhbHRzYWx0c2FsdA==";                      // 16 bytes
  const std::string hash = "A6xnQhbz4Vx2HuGl4lXwZ5U2I8iziLRFnhP5eNfIRvQ=";  // 32 bytes
  EXPECT_TRUE(shapes::is_valid_pin_hash("pbkdf2-sha256$10000$" + salt + "$" + hash));
  EXPECT_FALSE(shapes::is_valid_pin_hash("pbkdf2-sha256$9999$" + salt + "$" + hash));
  EXPECT_FALSE(shapes::is_valid_pin_hash("pbkdf2-sha1$10000$" + salt + "$" + hash));
  EXPECT_FALSE(shapes::is_valid_pin_hash("pbkdf2-sha256$10000$c2FsdA==$" + hash));  // 4-byte salt
  EXPECT_FALSE(shapes::is_valid_pin_hash("pbkdf2-sha256$10000$" + salt + "$" + hash.substr(0, 40)));
  EXPECT_FALSE(shapes::is_valid_pin_hash(
      "pbkdf2-sha256$10000$" + salt + "$" +
      "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"));
  EXPECT_FALSE(shapes::is_valid_pin_hash("pbkdf2-sha256$10000$" + salt + "$" + hash + "$x"));
  EXPECT_FALSE(shapes::is_valid_pin_hash("pbkdf2-sha256$010000$" + salt + "$" + hash));
  EXPECT_FALSE(shapes::is_valid_pin_hash("pbkdf2-sha256$10000$" + salt + "$" +
                                         "A6xn=hbz4Vx2HuGl4lXwZ5U2I8iziLRFnhP5eNfIRvQ="));
}

TEST(Golden, EveryBinaryHeaderRoundTrips) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kGolden / "binary")) {
    const auto header = json::parse(read(entry.path()));
    const std::string h = header.dump();
    std::string frame;
    for (int shift : {24, 16, 8, 0}) frame.push_back(static_cast<char>((h.size() >> shift) & 0xff));
    frame += h + "JPEGBYTES";
    auto decoded = decode_binary(frame);
    ASSERT_TRUE(decoded) << entry.path() << ": " << decoded.error().message;
    EXPECT_EQ(decoded.value().body, "JPEGBYTES");
    const auto again = encode_binary(decoded.value().header, decoded.value().body);
    auto redecoded = decode_binary(again);
    ASSERT_TRUE(redecoded);
    const auto n = again.size() - 4 - 9;
    EXPECT_EQ(json::parse(again.substr(4, n)), header) << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 2);
}

}  // namespace
}  // namespace secbox::protocol
