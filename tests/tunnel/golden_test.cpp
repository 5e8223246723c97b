// The wire contract: tests/golden/ holds one message per type of the cloud
// protocol, both directions. Each must parse through the project's envelope
// and re-serialise to the same JSON, so a change to the wire shape fails here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tunnel/envelope.hpp"

namespace secbox::tunnel {
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
}  // namespace secbox::tunnel
