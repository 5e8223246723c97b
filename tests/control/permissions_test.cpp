// control.json: each section allows its operations (and names), a missing
// section is unavailable, anything else forbidden; a bad file is refused
// whole naming the field; compose projects list their privileged options.
#include "control/permissions.hpp"

#include <gtest/gtest.h>

#include "temp_dir.hpp"

namespace secbox::control {
namespace {

using secbox::testing::TempDir;

// The verdict as a word: "allowed", or the refusal's condition.
std::string verdict(const Result<void>& r) {
  return r ? "allowed" : std::string(to_string(r.error().code));
}

TEST(Permissions, SectionsOperationsAndNames) {
  auto p =
      Permissions::parse(R"({"containers": {"allow": ["list", "restart"], "names": ["frigate"]},
                                   "metrics": {"allow": ["get"]},
                                   "compose": {"projects": {"frigate": {"allow": ["devices"], "mounts": ["/dev/bus/usb"]}}}})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(verdict(p.value().check("metrics", "get")), "allowed");
  EXPECT_EQ(verdict(p.value().check("metrics", "set")), "forbidden");
  EXPECT_EQ(verdict(p.value().check("containers", "restart", "frigate")), "allowed");
  EXPECT_EQ(verdict(p.value().check("containers", "restart", "postgres")), "forbidden");
  EXPECT_EQ(verdict(p.value().check("units", "restart", "frigate.service")), "unavailable");
  EXPECT_TRUE(p.value().names_explicitly("containers", "frigate"));
  EXPECT_FALSE(p.value().names_explicitly("metrics", "anything"));
  EXPECT_EQ(p.value().compose_allowance("frigate").allow.count("devices"), 1u);
  EXPECT_EQ(p.value().compose_allowance("frigate").mounts,
            std::vector<std::string>{"/dev/bus/usb"});
  EXPECT_TRUE(p.value().compose_allowance("other").allow.empty())
      << "an unnamed project may use nothing privileged";
  EXPECT_EQ(p.value().check("metrics", "set").error().message,
            "control.json does not allow metrics.set here");
  EXPECT_NE(
      p.value().check("units", "restart").error().message.find("\"units\" section is not enabled"),
      std::string::npos);
}

TEST(Permissions, ABadFileIsRefusedWholeAndAMissingOneHasNoSections) {
  for (const char* bad :
       {"[]", "{\"metrics\": {\"allow\": \"get\"}}", "{\"metrics\": {\"allow\": [1]}}",
        "{\"containers\": {\"allow\": [\"list\"], \"names\": \"frigate\"}}", "not json"}) {
    auto p = Permissions::parse(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().code, Errc::invalid) << bad;
  }
  TempDir dir;
  auto missing = Permissions::load(dir.file("control.json"));
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing.value().empty());
  EXPECT_EQ(verdict(missing.value().check("metrics", "get")), "unavailable");
  dir.write("control.json", R"({"jwt": {"allow": ["rotate"]}})");
  auto loaded = Permissions::load(dir.file("control.json"));
  ASSERT_TRUE(loaded);
  EXPECT_EQ(verdict(loaded.value().check("jwt", "rotate")), "allowed");
}

}  // namespace
}  // namespace secbox::control
