// Replays the outage: a compose restart on a box without secbox.env, with a
// compose file full of ${CLOUD_BASE_URL:-…}. The guards must either derive the
// env file from the legacy one, or abort at secbox-env-missing-keys before
// anything would run.
#include <gtest/gtest.h>

#include "envfile/guards.hpp"
#include "temp_dir.hpp"

namespace secbox::envfile {
namespace {

using secbox::testing::TempDir;

std::string outage_compose() {
  return TempDir::read(std::string(SECBOX_TEST_SOURCE_DIR) +
                       "/tests/golden/outage/docker-compose.yml");
}

// Phases 2–4 as a compose restart runs them; returns the phase that stopped it.
std::string run_guards(const std::string& env_path, const std::string& legacy_path,
                       const std::string& compose) {
  auto ensured = ensure_from_legacy(env_path, legacy_path, std::nullopt, false);
  if (!ensured) return std::string(kPhaseEnvEnsure);
  if (auto r = check_required_keys(ensured.value().env); !r) return std::string(kPhaseMissingKeys);
  if (auto r = check_interpolation(compose, ensured.value().env); !r)
    return std::string(kPhaseUnresolvedVars);
  return "compose-up";
}

TEST(OutageRegression, ComposeFileFailsWithoutAnEnvFile) {
  ASSERT_FALSE(outage_compose().empty());
  auto r = check_interpolation(outage_compose(), EnvFile{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid);
  EXPECT_NE(r.error().message.find("CLOUD_BASE_URL"), std::string::npos);
  EXPECT_NE(r.error().message.find("DEVICE_ID"), std::string::npos);
}

TEST(OutageRegression, MissingEnvFileIsDerivedFromLegacyAndTheStackMayRun) {
  TempDir dir;
  dir.write("mgmt-agent.env",
            "CLOUD_BASE_URL=https://cloud.example.com\nDEVICE_ID=dev_7Q2x\n"
            "BOOTSTRAP=bt_0123456789abcdef\nMGMT_GATEWAY_URL=wss://gw.example.com/ws/mgmt\n");
  EXPECT_EQ(run_guards(dir.file("secbox.env"), dir.file("mgmt-agent.env"), outage_compose()),
            "compose-up");
  auto env = load(dir.file("secbox.env"));
  ASSERT_TRUE(env);
  EXPECT_EQ(env.value().get("DEVICE_GATEWAY_URL"), "wss://gw.example.com/ws/device");
}

TEST(OutageRegression, LegacyWithoutDeviceIdAbortsBeforeAnythingRuns) {
  TempDir dir;
  dir.write("mgmt-agent.env",
            "CLOUD_BASE_URL=https://cloud.example.com\n"
            "MGMT_GATEWAY_URL=wss://gw.example.com/ws/mgmt\n");
  EXPECT_EQ(run_guards(dir.file("secbox.env"), dir.file("mgmt-agent.env"), outage_compose()),
            std::string(kPhaseMissingKeys));
}

TEST(OutageRegression, NeitherFileAbortsAtEnvEnsure) {
  TempDir dir;
  EXPECT_EQ(run_guards(dir.file("secbox.env"), dir.file("mgmt-agent.env"), outage_compose()),
            std::string(kPhaseEnvEnsure));
}

}  // namespace
}  // namespace secbox::envfile
