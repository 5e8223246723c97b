#include <gtest/gtest.h>

#include <sstream>

#include "appliance/cli.hpp"
#include "temp_dir.hpp"

namespace secbox::appliance {
namespace {

using secbox::testing::TempDir;

Config config_in(const TempDir& dir) {
  Config c;
  c.paths.etc_dir = dir.path();
  c.paths.state_dir = dir.path() + "/state";
  return c;
}

TEST(EnvCheck, PrintsEachPhaseAndStopsAtTheFirstFailure) {
  TempDir dir;
  dir.write("mgmt-agent.env", "CLOUD_BASE_URL=https://c.example.com\n");
  std::ostringstream out;
  EXPECT_EQ(env_check(config_in(dir), "", out), 1);
  EXPECT_NE(out.str().find("env-ensure                ok"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("secbox-env-missing-keys   FAIL  secbox.env lacks DEVICE_ID"),
            std::string::npos)
      << out.str();
  EXPECT_EQ(out.str().find("env-unresolved-vars"), std::string::npos);
  // Offline: nothing was written.
  EXPECT_TRUE(TempDir::read(dir.file("secbox.env")).empty());
}

TEST(EnvCheck, ComposeFileIsChecked) {
  TempDir dir;
  dir.write("secbox.env", "DEVICE_ID=dev_1\nCLOUD_BASE_URL=https://c.example.com\n");
  auto good = dir.write("good.yml", "x: ${DEVICE_ID}\n");
  auto bad = dir.write("bad.yml", "x: ${NOPE:-${DEVICE_ID}}\n");
  std::ostringstream out1, out2;
  EXPECT_EQ(env_check(config_in(dir), good, out1), 0) << out1.str();
  EXPECT_EQ(env_check(config_in(dir), bad, out2), 1);
  EXPECT_NE(out2.str().find("env-unresolved-vars       FAIL"), std::string::npos) << out2.str();
  EXPECT_NE(out2.str().find("NOPE"), std::string::npos) << out2.str();
}

TEST(Doctor, ReportsWhatIsWrongWithAFix) {
  TempDir dir;
  dir.write("secbox.env", "DEVICE_ID=dev_1\nCLOUD_BASE_URL=https://c.example.com\n", 0644);
  ::setenv("SECBOX_ETC_DIR", dir.path().c_str(), 1);
  ::setenv("SECBOX_STATE_DIR", (dir.path() + "/state").c_str(), 1);
  std::ostringstream out;
  auto c = load_config(process_environment());
  ASSERT_TRUE(c);
  EXPECT_EQ(doctor(c.value(), out), 1);
  EXPECT_NE(out.str().find("FAIL  env file"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("chmod 600"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("ok    config      paired as dev_1"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("clock"), std::string::npos);
  EXPECT_NE(out.str().find("disk"), std::string::npos);
  ::unsetenv("SECBOX_ETC_DIR");
  ::unsetenv("SECBOX_STATE_DIR");
}

TEST(Cli, UsageErrorsExitWith2) {
  const char* unknown[] = {"secbox", "frobnicate"};
  EXPECT_EQ(main_cli(2, const_cast<char**>(unknown)), 2);
  const char* none[] = {"secbox"};
  EXPECT_EQ(main_cli(1, const_cast<char**>(none)), 2);
  const char* help[] = {"secbox", "doctor", "--help"};
  EXPECT_EQ(main_cli(3, const_cast<char**>(help)), 0);
}

}  // namespace
}  // namespace secbox::appliance
