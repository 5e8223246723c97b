// Errc: one spelling per condition, each distinct, printable.
#include "common/result.hpp"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

namespace secbox {
namespace {

TEST(Errc, EveryConditionHasItsOwnSpelling) {
  const Errc all[] = {Errc::invalid, Errc::not_found,    Errc::too_large,    Errc::forbidden,
                      Errc::busy,    Errc::queue_full,   Errc::unavailable,  Errc::network,
                      Errc::timeout, Errc::disconnected, Errc::refused,      Errc::io,
                      Errc::spawn,   Errc::database,     Errc::schema_newer, Errc::config,
                      Errc::internal};
  std::set<std::string> seen;
  for (Errc c : all) {
    const std::string name(to_string(c));
    EXPECT_FALSE(name.empty());
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string::npos) << name;
    EXPECT_TRUE(seen.insert(name).second) << name << " is spelled twice";
  }
  EXPECT_EQ(to_string(Errc::not_found), "not_found");
}

TEST(Errc, PrintsAsItsSpelling) {
  std::ostringstream out;
  out << Errc::queue_full;
  EXPECT_EQ(out.str(), "queue_full");
}

TEST(Errc, AnErrorCarriesItsConditionAndItsSentence) {
  Result<int> r = make_error(Errc::too_large, "over 8 KiB");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::too_large);
  EXPECT_EQ(r.error().message, "over 8 KiB");
  EXPECT_EQ(Error{}.code, Errc::internal);
}

}  // namespace
}  // namespace secbox
