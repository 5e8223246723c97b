// Versions side by side: staged once (a re-stage of the same bytes is
// harmless, of other bytes refused), links switched whole, nothing left
// half-made by a crash in the middle, hostile version names refused.
#include "update/versions.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "temp_dir.hpp"

namespace secbox::update {
namespace {

using secbox::testing::TempDir;

TEST(Versions, StagedSideBySideAndSwitchedByLink) {
  TempDir dir;
  VersionStore store(dir.file("lib"));
  EXPECT_FALSE(store.current());
  EXPECT_TRUE(store.versions().empty());
  dir.write("v1", "#!/bin/sh\necho one\n");
  dir.write("v2", "#!/bin/sh\necho two\n");
  ASSERT_TRUE(store.stage("0.1.0", dir.file("v1")));
  ASSERT_TRUE(store.stage("0.2.0", dir.file("v2")));
  EXPECT_EQ(store.versions(), (std::vector<std::string>{"0.1.0", "0.2.0"}));
  EXPECT_EQ(TempDir::read(store.binary("0.2.0")), "#!/bin/sh\necho two\n");
  struct stat st {};
  ASSERT_EQ(::stat(store.binary("0.2.0").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);

  ASSERT_TRUE(store.set_current("0.1.0"));
  ASSERT_TRUE(store.set_known_good("0.1.0"));
  ASSERT_TRUE(store.set_current("0.2.0"));
  EXPECT_EQ(store.current(), "0.2.0");
  EXPECT_EQ(store.known_good(), "0.1.0");
  // What the unit runs: <root>/current/secbox.
  EXPECT_EQ(TempDir::read(dir.file("lib/current/secbox")), "#!/bin/sh\necho two\n");
  char buf[64];
  const auto n = ::readlink(dir.file("lib/current").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "versions/0.2.0") << "relative: the tree can move";

  auto missing = store.set_current("9.9.9");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::io);
  EXPECT_EQ(store.current(), "0.2.0") << "a failed switch changes nothing";
}

TEST(Versions, RestagingAndCrashLeftovers) {
  TempDir dir;
  VersionStore store(dir.file("lib"));
  dir.write("v1", "one");
  dir.write("other", "not one");
  ASSERT_TRUE(store.stage("1.0.0", dir.file("v1")));
  EXPECT_TRUE(store.stage("1.0.0", dir.file("v1"))) << "asked again: the same bytes are there";
  auto clash = store.stage("1.0.0", dir.file("other"));
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, Errc::io);
  EXPECT_EQ(TempDir::read(store.binary("1.0.0")), "one") << "never written over";

  // A crash while staging 2.0.0 left a half-copied folder, and one while
  // switching left the new link beside the old.
  ::mkdir(dir.file("lib/versions/2.0.0.staging").c_str(), 0755);
  dir.write("lib/versions/2.0.0.staging/secbox", "ha");
  EXPECT_EQ(store.versions(), std::vector<std::string>{"1.0.0"}) << "a folder being staged is no version";
  ASSERT_EQ(::symlink("versions/nowhere", dir.file("lib/current.new").c_str()), 0);
  dir.write("v2", "two");
  ASSERT_TRUE(store.stage("2.0.0", dir.file("v2")));
  ASSERT_TRUE(store.set_current("2.0.0"));
  EXPECT_EQ(TempDir::read(dir.file("lib/current/secbox")), "two");
  EXPECT_EQ(store.versions(), (std::vector<std::string>{"1.0.0", "2.0.0"}));
}

TEST(Versions, HostileNamesAreRefused) {
  TempDir dir;
  VersionStore store(dir.file("lib"));
  dir.write("v", "x");
  for (const char* bad : {"", "../etc", "a/b", ".hidden", "-rf", "1.0 beta", "1.0.staging",
                          "0123456789012345678901234567890123456789012345678901234567890123456789"}) {
    EXPECT_FALSE(VersionStore::valid_version(bad)) << bad;
    auto r = store.stage(bad, dir.file("v"));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::io);
    EXPECT_FALSE(store.set_current(bad)) << bad;
  }
  for (const char* good : {"0.1.0", "1.2.3-rc.1", "2026.12.04+g27e3699", "v3_test"}) {
    EXPECT_TRUE(VersionStore::valid_version(good)) << good;
  }
}

}  // namespace
}  // namespace secbox::update
