#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "envfile/env_file.hpp"
#include "temp_dir.hpp"

namespace secbox::envfile {
namespace {

using secbox::testing::TempDir;

TEST(EnvWrite, RoundTripsAwkwardValues) {
  EnvFile env;
  env.set("PLAIN", "abc-1.2:3/4@x");
  env.set("EMPTY", "");
  env.set("SPACES", "  two  words  ");
  env.set("DOLLAR", "pa$$word ${NOT_EXPANDED}");
  env.set("QUOTES", "it's \"quoted\" `tick` \\back");
  env.set("HASH", "#not-a-comment");
  env.set("UNICODE", "Caseta Ñandú 🚪");
  auto text = serialize(env);
  ASSERT_TRUE(text) << text.error().message;
  auto back = parse(text.value());
  ASSERT_TRUE(back) << back.error().message << "\n" << text.value();
  EXPECT_EQ(back.value(), env) << text.value();
}

TEST(EnvWrite, RandomValuesRoundTrip) {
  std::mt19937 rng(42);
  const std::string alphabet = "aZ09 _-'\"\\$`#;=:{}()!*?\t";
  for (int round = 0; round < 500; ++round) {
    EnvFile env;
    for (int k = 0; k < 4; ++k) {
      std::string v;
      int len = static_cast<int>(rng() % 20);
      for (int i = 0; i < len; ++i) v += alphabet[rng() % alphabet.size()];
      env.set("K" + std::to_string(k), v);
    }
    auto text = serialize(env);
    ASSERT_TRUE(text);
    auto back = parse(text.value());
    ASSERT_TRUE(back) << back.error().message << "\n" << text.value();
    ASSERT_EQ(back.value(), env) << text.value();
  }
}

TEST(EnvWrite, RefusesNewlineCarriageReturnAndNul) {
  for (std::string bad : {std::string("a\nINJECTED=1"), std::string("a\rb"), std::string("a\0b", 3),
                          std::string("\xff")}) {
    EnvFile env;
    env.set("DEVICE_ID", bad);
    auto text = serialize(env);
    ASSERT_FALSE(text);
    EXPECT_EQ(text.error().code, Errc::invalid);
    EXPECT_NE(text.error().message.find("DEVICE_ID"), std::string::npos);
  }
}

TEST(EnvWrite, RefusesKeysOutsideTheAllowedSet) {
  for (const char* key : {"lower", "1ABC", "A-B", "A B", "", "A=B", "ÑA"}) {
    EXPECT_FALSE(validate_key(key)) << key;
  }
  for (const char* key : {"A", "_A", "DEVICE_ID", "A1_B2"}) {
    EXPECT_TRUE(validate_key(key)) << key;
  }
}

TEST(EnvWrite, SaveIsAtomicWithMode0600AndNoTempLeftBehind) {
  TempDir dir;
  const auto path = dir.file("secbox.env");
  dir.write("secbox.env", "OLD=1\n", 0644);
  EnvFile env;
  env.set("DEVICE_ID", "dev_1");
  ASSERT_TRUE(save(path, env));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(TempDir::read(path), "DEVICE_ID=dev_1\n");
  int files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1);
}

TEST(EnvWrite, RefusedValueLeavesTheOldFileUntouched) {
  TempDir dir;
  const auto path = dir.write("secbox.env", "DEVICE_ID=old\n");
  EnvFile env;
  env.set("DEVICE_ID", "new\nEVIL=1");
  EXPECT_FALSE(save(path, env));
  EXPECT_EQ(TempDir::read(path), "DEVICE_ID=old\n");
}

TEST(EnvWrite, OwnerIsSet) {
  if (::geteuid() != 0) GTEST_SKIP() << "changing a file's owner needs root";
  TempDir dir;
  const auto path = dir.file("secbox.env");
  EnvFile env;
  env.set("A", "1");
  ASSERT_TRUE(save(path, env, FileOwner{65534, 65534}));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
}

TEST(EnvWrite, LoadReportsMissingFileAsNotFound) {
  TempDir dir;
  auto r = load(dir.file("nope.env"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
}

TEST(EnvWrite, LoadNamesTheFileInParseErrors) {
  TempDir dir;
  auto r = load(dir.write("secbox.env", "A=1\nB='x\n"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("secbox.env line 2"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace secbox::envfile
