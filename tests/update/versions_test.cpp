// Versions side by side: a bundle staged once (asked again from the same
// manifest, harmless; from another, replaced unless in use), its daemon's
// built-in version checked, links switched whole, nothing left half-made by
// a crash or a refused bundle, hostile version names refused.
#include "update/versions.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "releases.hpp"
#include "temp_dir.hpp"
#include "update/bundle.hpp"

namespace secbox::update {
namespace {

using secbox::testing::fake_daemon;
using secbox::testing::TempDir;

// Stages a bundle of a stand-in daemon whose built-in version is `built_in`.
Result<void> stage(const TempDir& dir, VersionStore& store, const std::string& version,
                   const std::string& built_in, const std::string& manifest = "{}",
                   const std::string& app = "<title>app</title>") {
  auto bytes = pack_bundle({{"secbox", fake_daemon(built_in), BundleEntry::Kind::file, 0755},
                            {"web", "", BundleEntry::Kind::folder, 0755},
                            {"web/index.html", app, BundleEntry::Kind::file, 0644}},
                           3);
  static int serial = 0;
  const std::string path = dir.write("bundle-" + std::to_string(++serial), bytes.value(), 0644);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  auto r = store.stage_bundle(version, fd, manifest);
  ::close(fd);
  return r;
}

TEST(Versions, StagedSideBySideWithTheirAppAndSwitchedByLink) {
  TempDir dir;
  VersionStore store(dir.file("lib"));
  EXPECT_FALSE(store.current());
  EXPECT_TRUE(store.versions().empty());
  ASSERT_TRUE(stage(dir, store, "0.1.0", "0.1.0", "{\"m\":1}", "one"));
  ASSERT_TRUE(stage(dir, store, "0.2.0", "0.2.0", "{\"m\":2}", "two"));
  EXPECT_EQ(store.versions(), (std::vector<std::string>{"0.1.0", "0.2.0"}));
  EXPECT_EQ(TempDir::read(dir.file("lib/versions/0.2.0/web/index.html")), "two");
  EXPECT_EQ(store.manifest_of("0.2.0"), "{\"m\":2}");
  struct stat st {};
  ASSERT_EQ(::stat(store.binary("0.2.0").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);

  ASSERT_TRUE(store.set_current("0.1.0"));
  ASSERT_TRUE(store.set_known_good("0.1.0"));
  ASSERT_TRUE(store.set_current("0.2.0"));
  EXPECT_EQ(store.current(), "0.2.0");
  EXPECT_EQ(store.known_good(), "0.1.0");
  EXPECT_EQ(TempDir::read(dir.file("lib/current/web/index.html")), "two")
      << "the app follows the link";
  char buf[64];
  const auto n = ::readlink(dir.file("lib/current").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "versions/0.2.0")
      << "relative: the tree can move";

  auto missing = store.set_current("9.9.9");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::io);
  EXPECT_EQ(store.current(), "0.2.0") << "a failed switch changes nothing";
}

TEST(Versions, ADaemonOfAnotherVersionIsRefusedAndLeavesNothing) {
  TempDir dir;
  VersionStore store(dir.file("lib"));
  auto r = stage(dir, store, "9.0.0", "0.1.0");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid);
  EXPECT_NE(r.error().message.find("0.1.0, not the manifest's 9.0.0"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(store.versions().empty());
  EXPECT_NE(::access(dir.file("lib/versions/9.0.0.staging").c_str(), F_OK), 0);
  auto none = stage(dir, store, "9.0.0", "");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no built-in version"), std::string::npos)
      << none.error().message;
}

TEST(Versions, RestagingAndCrashLeftovers) {
  TempDir dir;
  VersionStore store(dir.file("lib"));
  ASSERT_TRUE(stage(dir, store, "1.0.0", "1.0.0", "{\"a\":1}", "one"));
  EXPECT_TRUE(stage(dir, store, "1.0.0", "1.0.0", "{\"a\":1}", "one"))
      << "asked again: the same manifest is there";
  ASSERT_TRUE(store.set_current("1.0.0"));
  auto clash = stage(dir, store, "1.0.0", "1.0.0", "{\"a\":2}", "other");
  ASSERT_FALSE(clash) << "in use: never written over";
  EXPECT_EQ(TempDir::read(dir.file("lib/versions/1.0.0/web/index.html")), "one");

  // A crash while staging 2.0.0 left a half-unpacked folder, and one while
  // switching left the new link beside the old.
  ::mkdir(dir.file("lib/versions/2.0.0.staging").c_str(), 0755);
  ::mkdir(dir.file("lib/versions/2.0.0.staging/web").c_str(), 0755);
  dir.write("lib/versions/2.0.0.staging/secbox", "ha");
  EXPECT_EQ(store.versions(), std::vector<std::string>{"1.0.0"})
      << "a folder being staged is no version";
  ASSERT_EQ(::symlink("versions/nowhere", dir.file("lib/current.new").c_str()), 0);
  ASSERT_TRUE(stage(dir, store, "2.0.0", "2.0.0", "{\"b\":1}", "two"));
  ASSERT_TRUE(store.set_current("2.0.0"));
  EXPECT_EQ(TempDir::read(dir.file("lib/current/web/index.html")), "two");
  EXPECT_EQ(store.versions(), (std::vector<std::string>{"1.0.0", "2.0.0"}));
  // Not in use, from another manifest: replaced.
  ASSERT_TRUE(store.set_current("1.0.0"));
  ASSERT_TRUE(stage(dir, store, "2.0.0", "2.0.0", "{\"b\":2}", "two again"));
  EXPECT_EQ(TempDir::read(dir.file("lib/versions/2.0.0/web/index.html")), "two again");
  store.remove("2.0.0");
  store.remove("1.0.0");
  EXPECT_EQ(store.versions(), std::vector<std::string>{"1.0.0"}) << "current is never removed";
}

TEST(Versions, HostileNamesAreRefused) {
  TempDir dir;
  VersionStore store(dir.file("lib"));
  for (const char* bad :
       {"", "../etc", "a/b", ".hidden", "-rf", "1.0 beta", "1.0.staging",
        "0123456789012345678901234567890123456789012345678901234567890123456789"}) {
    EXPECT_FALSE(VersionStore::valid_version(bad)) << bad;
    auto r = stage(dir, store, bad, "1.0.0");
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
