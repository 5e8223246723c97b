#include <gtest/gtest.h>

#include "protocol/envelope.hpp"

namespace secbox::protocol {
namespace {

Malformed malformed(std::string_view text) {
  auto r = parse_envelope(text);
  EXPECT_TRUE(std::holds_alternative<Malformed>(r)) << text;
  return std::holds_alternative<Malformed>(r) ? std::get<Malformed>(r) : Malformed{};
}

TEST(Envelope, ParsesARequest) {
  auto r = parse_envelope(
      R"({"v":1,"type":"delta.banned_visitor","id":"m-184","ts":"2026-11-22T10:00:00Z","payload":{"changes":[]}})");
  ASSERT_TRUE(std::holds_alternative<Envelope>(r));
  const auto& e = std::get<Envelope>(r);
  EXPECT_EQ(e.type, "delta.banned_visitor");
  EXPECT_EQ(e.id, "m-184");
  EXPECT_EQ(e.ts, "2026-11-22T10:00:00Z");
  EXPECT_FALSE(e.re);
  EXPECT_TRUE(e.payload["changes"].is_array());
}

TEST(Envelope, AbsentPayloadMeansEmptyObject) {
  auto r = parse_envelope(R"({"v":1,"type":"jwt.rotate","id":"a","ts":"t"})");
  ASSERT_TRUE(std::holds_alternative<Envelope>(r));
  EXPECT_EQ(std::get<Envelope>(r).payload, nlohmann::json::object());
}

// §4.1: "payload present but not an object" is bad_message, and null is present.
TEST(Envelope, APresentPayloadThatIsNotAnObjectIsMalformedNullIncluded) {
  for (auto payload : {"null", "[]", "1", "\"x\"", "true"}) {
    auto r = parse_envelope(
        std::string(R"({"v":1,"type":"jwt.rotate","id":"a","ts":"t","payload":)") + payload + "}");
    ASSERT_TRUE(std::holds_alternative<Malformed>(r)) << payload;
    EXPECT_EQ(std::get<Malformed>(r).message, "\"payload\" is not an object");
    EXPECT_EQ(std::get<Malformed>(r).re, "a") << "answered with re: the id was usable";
  }
}

TEST(Envelope, EachMalformedCaseIsNamed) {
  EXPECT_EQ(malformed("{not json").message, "not JSON");
  EXPECT_EQ(malformed("[1,2]").message, "not a JSON object");
  EXPECT_EQ(malformed(R"({"v":2,"type":"x","id":"a"})").message, "\"v\" is not 1");
  EXPECT_EQ(malformed(R"({"v":"1","type":"x","id":"a"})").message, "\"v\" is not 1");
  EXPECT_EQ(malformed(R"({"v":1.5,"type":"x","id":"a"})").message, "\"v\" is not 1");
  EXPECT_EQ(malformed(R"({"type":"x","id":"a"})").message, "no \"v\"");
  EXPECT_EQ(malformed(R"({"v":1,"id":"a"})").message, "no \"type\"");
  EXPECT_EQ(malformed(R"({"v":1,"type":"","id":"a"})").message, "\"type\" is empty");
  EXPECT_EQ(malformed(R"({"v":1,"type":7,"id":"a"})").message, "\"type\" is not a string");
  EXPECT_EQ(malformed(R"({"v":1,"type":"x"})").message, "no \"id\"");
  EXPECT_EQ(malformed(R"({"v":1,"type":"x","id":5})").message, "\"id\" is not a string");
  EXPECT_NE(malformed(R"({"v":1,"type":"x","id":"has space"})").message.find("\"id\""),
            std::string::npos);
  EXPECT_EQ(malformed(R"({"v":1,"type":"x","id":"a","payload":[]})").message,
            "\"payload\" is not an object");
  EXPECT_EQ(malformed(R"({"v":1,"type":"x","id":"a","re":3})").message, "\"re\" is not a string");
}

TEST(Envelope, MalformedCarriesTheIdOnlyWhenUsable) {
  EXPECT_EQ(malformed(R"({"v":2,"type":"x","id":"req-9"})").re, "req-9");
  EXPECT_EQ(malformed(R"({"v":1,"type":"x","id":"a","payload":5})").re, "a");
  EXPECT_FALSE(malformed(R"({"v":1,"type":"x","id":"bad id"})").re);
  EXPECT_FALSE(malformed(R"({"v":1,"type":"x","id":7})").re);
  EXPECT_FALSE(malformed("garbage").re);
}

TEST(Envelope, IdRule) {
  EXPECT_TRUE(is_valid_id("a"));
  EXPECT_TRUE(is_valid_id("dev_7Q2x:m-1.2"));
  EXPECT_TRUE(is_valid_id(std::string(128, 'x')));
  EXPECT_FALSE(is_valid_id(""));
  EXPECT_FALSE(is_valid_id(std::string(129, 'x')));
  EXPECT_FALSE(is_valid_id("a/b"));
  EXPECT_FALSE(is_valid_id("ñ"));
}

TEST(Envelope, SerializeOrdersKeysAndRoundTrips) {
  Envelope e;
  e.type = "ack";
  e.id = "b-1";
  e.ts = "2026-11-22T10:00:00Z";
  e.re = "m-184";
  e.payload = {{"cursor", 42}};
  const auto text = serialize(e);
  EXPECT_EQ(
      text,
      R"({"v":1,"type":"ack","id":"b-1","ts":"2026-11-22T10:00:00Z","re":"m-184","payload":{"cursor":42}})");
  auto back = parse_envelope(text);
  ASSERT_TRUE(std::holds_alternative<Envelope>(back));
  EXPECT_EQ(std::get<Envelope>(back).payload, e.payload);
  EXPECT_EQ(std::get<Envelope>(back).re, "m-184");
}

TEST(Envelope, ErrorReply) {
  auto e = error_message("b-2", "2026-11-22T10:00:00Z", std::nullopt, ErrorCode::bad_message,
                         "not JSON");
  EXPECT_EQ(
      serialize(e),
      R"({"v":1,"type":"error","id":"b-2","ts":"2026-11-22T10:00:00Z","payload":{"code":"bad_message","message":"not JSON"}})");
}

TEST(BinaryFrame, RoundTrip) {
  BinaryHeader h;
  h.type = BinaryType::frigate_frame;
  h.re = "m-7";
  h.stream = "s-1";
  h.seq = 12;
  const std::string body("\xff\xd8\x00jpeg\xff\xd9", 9);
  const auto frame = encode_binary(h, body);
  auto d = decode_binary(frame);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d.value().header.type, BinaryType::frigate_frame);
  EXPECT_EQ(d.value().header.re, "m-7");
  EXPECT_EQ(d.value().header.stream, "s-1");
  EXPECT_EQ(d.value().header.seq, 12u);
  EXPECT_EQ(d.value().header.content_type, "image/jpeg");
  EXPECT_EQ(d.value().body, body);
  // The length prefix is big-endian.
  const auto n = (static_cast<unsigned char>(frame[2]) << 8) | static_cast<unsigned char>(frame[3]);
  EXPECT_EQ(frame.substr(4, n).front(), '{');
  EXPECT_EQ(frame[0], 0);
}

TEST(BinaryFrame, BadFramesAreRefused) {
  EXPECT_FALSE(decode_binary(""));
  EXPECT_FALSE(decode_binary(std::string("\x00\x00\x00", 3)));
  EXPECT_FALSE(decode_binary(std::string("\x00\x00\x00\x10{}", 6)));  // length too long
  EXPECT_FALSE(decode_binary(std::string("\xff\xff\xff\xff", 4)));    // huge length
  EXPECT_FALSE(decode_binary(std::string("\x00\x00\x00\x02[]", 6)));  // not an object
  EXPECT_FALSE(decode_binary(std::string("\x00\x00\x00\x02{}", 6)));  // no type
  const std::string h = R"({"type":"other","contentType":"image/jpeg"})";
  EXPECT_FALSE(decode_binary(std::string("\x00\x00\x00", 3) + static_cast<char>(h.size()) + h));
  const std::string s = R"({"type":"frigate.frame","seq":-1,"contentType":"image/jpeg"})";
  EXPECT_FALSE(decode_binary(std::string("\x00\x00\x00", 3) + static_cast<char>(s.size()) + s));
}

}  // namespace
}  // namespace secbox::protocol
