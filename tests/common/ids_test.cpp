// Identifiers: random v4 UUIDs, and name-based v5 UUIDs that match RFC 4122
// as Python's uuid.uuid5 computes them (the reference value below).
#include <set>

#include <gtest/gtest.h>

#include "common/ids.hpp"

namespace secbox {
namespace {

TEST(Ids, RandomUuidsAreVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto u = random_uuid();
    ASSERT_EQ(u.size(), 36u);
    EXPECT_EQ(u[14], '4');
    EXPECT_TRUE(seen.insert(u).second);
  }
}

TEST(Ids, NameUuidsAreRfc4122Version5) {
  // python3 -c "import uuid; print(uuid.uuid5(uuid.UUID('5d0c2f3e-8a41-4c7b-9e36-b1f0a4d2c917'),
  // 'frigate-event:ev-1'))"
  EXPECT_EQ(name_uuid("frigate-event:ev-1"), "74324837-3eef-57f7-9534-a6815c0ef5d2");
  EXPECT_EQ(name_uuid("x"), name_uuid("x"));
  EXPECT_NE(name_uuid("x"), name_uuid("y"));
}

}  // namespace
}  // namespace secbox
