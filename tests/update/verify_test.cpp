// A downloaded bundle against its manifest, through one descriptor: the
// right bytes pass; another size, another SHA-256 or a folder fail, saying
// which; the descriptor is left at its start for the unpack.
#include "update/verify.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "temp_dir.hpp"

namespace secbox::update {
namespace {

using secbox::testing::TempDir;

constexpr const char* kAbc =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // SHA-256("abc")

TEST(CheckBundle, TheManifestsSizeAndHashThroughOneDescriptor) {
  TempDir dir;
  dir.write("b", "abc", 0644);
  EXPECT_EQ(file_sha256(dir.file("b")).value(), kAbc);
  const int fd = ::open(dir.file("b").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(check_bundle(fd, 3, kAbc));
  char c = 0;
  EXPECT_EQ(::read(fd, &c, 1), 1);
  EXPECT_EQ(c, 'a') << "left at its start";

  auto size = check_bundle(fd, 4, kAbc);
  ASSERT_FALSE(size);
  EXPECT_NE(size.error().message.find("not the manifest's 4"), std::string::npos)
      << size.error().message;
  auto hash = check_bundle(fd, 3, std::string(64, '0'));
  ASSERT_FALSE(hash);
  EXPECT_NE(hash.error().message.find("SHA-256"), std::string::npos);
  ::close(fd);

  const int folder = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_FALSE(check_bundle(folder, 3, kAbc));
  ::close(folder);
}

TEST(CheckBundle, Sha256HexShape) {
  EXPECT_TRUE(is_sha256_hex(kAbc));
  EXPECT_TRUE(is_sha256_hex(std::string(64, 'F')));
  EXPECT_FALSE(is_sha256_hex(std::string(63, 'a')));
  EXPECT_FALSE(is_sha256_hex(std::string(64, 'g')));
}

}  // namespace
}  // namespace secbox::update
