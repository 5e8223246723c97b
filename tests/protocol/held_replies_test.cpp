// Replies held while their answer is computed elsewhere: taken back once,
// released all at once when the component stops (no answer, not even
// `error internal`, goes out for a released one).
#include "protocol/held_replies.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "protocol/dispatcher.hpp"

namespace secbox::protocol {
namespace {

using json = nlohmann::json;

TEST(HeldReplies, EachIsTakenOnceAndTheRestAreReleasedTogether) {
  boost::asio::io_context io;
  std::vector<json> sent;
  MessageIds ids;
  Dispatcher d{io,
               [&](const std::string& text) {
                 sent.push_back(json::parse(text));
                 return true;
               },
               ids};
  HeldReplies held;
  std::vector<std::uint64_t> numbers;
  d.on_request("metrics.get",
               [&](const Envelope&, Reply r) { numbers.push_back(held.hold(std::move(r))); });
  for (int i = 1; i <= 3; ++i)
    d.dispatch(R"({"v":1,"type":"metrics.get","id":"c-)" + std::to_string(i) + R"(","ts":"t"})");
  ASSERT_EQ(numbers.size(), 3u);
  EXPECT_EQ(held.size(), 3u);
  EXPECT_TRUE(sent.empty()) << "held, not answered";

  auto second = held.take(numbers[1]);
  ASSERT_TRUE(second);
  second->send("metrics.result", {{"n", 2}});
  EXPECT_FALSE(held.take(numbers[1])) << "taken once";
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["re"], "c-2");

  held.release_all();
  EXPECT_EQ(held.size(), 0u);
  EXPECT_FALSE(held.take(numbers[0]));
  EXPECT_EQ(sent.size(), 1u) << "released replies send nothing";
}

}  // namespace
}  // namespace secbox::protocol
