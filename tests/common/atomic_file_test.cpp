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
  EXPECT_EQ(r.error().code, "io");
}

TEST(ReadFile, SizeLimitAndNotFound) {
  TempDir dir;
  auto p = dir.write("f", std::string(1000, 'x'));
  EXPECT_EQ(read_file(p, 999).error().code, "too-large");
  EXPECT_EQ(read_file(p, 1000).value().size(), 1000u);
  EXPECT_EQ(read_file(dir.file("none"), 10).error().code, "not_found");
}

}  // namespace
}  // namespace secbox
