#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/atomic_file.hpp"
#include "temp_dir.hpp"

namespace secbox {
namespace {

using testing::TempDir;

TEST(AtomicFile, WritesWithModeAndReplaces) {
  TempDir dir;
  auto path = dir.file("device.jwt");
  ASSERT_TRUE(write_file_atomically(path, "one"));
  ASSERT_TRUE(write_file_atomically(path, "two", AtomicWriteOptions{0640, std::nullopt}));
  EXPECT_EQ(read_file(path, 100).value(), "two");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST(AtomicFile, MissingFolderIsAnError) {
  TempDir dir;
  auto r = write_file_atomically(dir.file("no/such/dir/f"), "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::io);
}

TEST(ReadFile, SizeLimitAndNotFound) {
  TempDir dir;
  auto p = dir.write("f", std::string(1000, 'x'));
  EXPECT_EQ(read_file(p, 999).error().code, Errc::too_large);
  EXPECT_EQ(read_file(p, 1000).value().size(), 1000u);
  EXPECT_EQ(read_file(dir.file("none"), 10).error().code, Errc::not_found);
}

TEST(ReadFolder, OneExtensionInNameOrderEachBoundedAndAtMostSoMany) {
  TempDir dir;
  EXPECT_TRUE(read_folder(dir.file("absent"), ".json", 100).problems.empty())
      << "no folder is no problem";
  ::mkdir(dir.file("d").c_str(), 0700);
  dir.write("d/b.json", "{}");
  dir.write("d/a.json", "[]");
  dir.write("d/notes.txt", "ignored");
  dir.write("d/big.json", std::string(200, 'x'));
  ::mkdir(dir.file("d/folder.json").c_str(), 0700);  // not a regular file
  auto r = read_folder(dir.file("d"), ".json", 100);
  ASSERT_EQ(r.files.size(), 2u);
  EXPECT_EQ(r.files[0].stem, "a");
  EXPECT_EQ(r.files[0].text, "[]");
  EXPECT_EQ(r.files[1].filename, "b.json");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].rfind("big.json: ", 0), 0u) << r.problems[0];
  auto capped = read_folder(dir.file("d"), ".json", 1000, 2);
  EXPECT_EQ(capped.files.size(), 2u);
  ASSERT_FALSE(capped.problems.empty());
  EXPECT_NE(capped.problems[0].find("more than 2 .json files"), std::string::npos);
}

}  // namespace
}  // namespace secbox
