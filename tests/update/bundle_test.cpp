// The bundle unpacked without trusting it (real tar+zstd archives made with
// libarchive, good and hostile): secbox and web/ come out as files and
// folders; a link, a hard link, "..", an absolute name, a device, a FIFO,
// another top-level name, an entry given twice, more than the unpacked cap,
// a plain or gzip'd tar, and garbage are each refused with a sentence that
// names the entry, and nothing is written outside the staging folder.
#include "update/bundle.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "temp_dir.hpp"

namespace secbox::update {
namespace {

using secbox::testing::TempDir;
using K = BundleEntry::Kind;

std::vector<BundleEntry> good() {
  return {{"secbox", "#!/bin/sh\n", K::file, 0755},
          {"web", "", K::folder, 0755},
          {"web/index.html", "<title>app</title>", K::file, 0644},
          {"web/assets/app.js", "console.log(1)", K::file, 0644}};
}

struct Staging {
  TempDir dir;
  std::string staging = dir.file("staging");
  Staging() { ::mkdir(staging.c_str(), 0755); }
  Result<Unpacked> unpack(const std::string& bytes, BundleLimits limits = {}) {
    const std::string path = dir.write("bundle", bytes, 0644);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    auto r = unpack_bundle(fd, staging, limits);
    ::close(fd);
    return r;
  }
};

std::string tar_with(const std::vector<BundleEntry>& entries, int filter) {
  // A tar with another compression (or none), written with libarchive.
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(),
                                                            archive_write_free);
  std::string out;
  if (filter == ARCHIVE_FILTER_GZIP) archive_write_add_filter_gzip(a.get());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_open(
      a.get(), &out, nullptr,
      [](archive*, void* c, const void* b, std::size_t n) -> la_ssize_t {
        static_cast<std::string*>(c)->append(static_cast<const char*>(b), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& be : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, be.name.c_str());
    archive_entry_set_filetype(e, be.kind == K::folder ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, be.mode);
    if (be.kind == K::file) archive_entry_set_size(e, static_cast<la_int64_t>(be.bytes.size()));
    archive_write_header(a.get(), e);
    if (be.kind == K::file) archive_write_data(a.get(), be.bytes.data(), be.bytes.size());
    archive_entry_free(e);
  }
  archive_write_close(a.get());
  return out;
}

TEST(Bundle, SecboxAndWebComeOutAsFilesAndFolders) {
  Staging s;
  auto r = s.unpack(pack_bundle(good(), 3).value());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().files, 3u);
  EXPECT_EQ(TempDir::read(s.staging + "/web/assets/app.js"), "console.log(1)")
      << "a folder made on the way";
  struct stat st {};
  ASSERT_EQ(::stat((s.staging + "/secbox").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat((s.staging + "/web/index.html").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(Bundle, GnuTarsDotSlashNamesAreRead) {
  Staging s;
  auto entries = good();
  for (auto& e : entries) e.name = "./" + e.name;
  entries.insert(entries.begin(), {"./", "", K::folder, 0755});
  EXPECT_TRUE(s.unpack(pack_bundle(entries, 3).value()));
}

TEST(Bundle, HostileEntriesAreRefusedAndNothingLeavesStaging) {
  struct Case {
    const char* what;
    BundleEntry entry;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"a link", {"web/passwd", "/etc/passwd", K::symlink, 0777}, "a link"},
      {"a link out of the folder", {"web/up", "../../..", K::symlink, 0777}, "a link"},
      {"a hard link", {"web/again", "secbox", K::hardlink, 0644}, "hard link"},
      {"..", {"web/../../escaped", "x", K::file, 0644}, ".."},
      {"an absolute name", {"/tmp/secbox-bundle-test-escaped", "x", K::file, 0644}, "absolute"},
      {"a device", {"web/null", "", K::device, 0666}, "neither a file nor a folder"},
      {"a FIFO", {"web/pipe", "", K::fifo, 0666}, "neither a file nor a folder"},
      {"another top-level name", {"lib.so", "x", K::file, 0644}, "only secbox and web/"},
      {"secbox as a folder", {"secbox/x", "x", K::file, 0644}, "only secbox and web/"},
      {"an entry given twice", {"web/index.html", "again", K::file, 0644}, "twice"},
      {"a name with a newline", {"web/a\nb", "x", K::file, 0644}, "unreadable"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    Staging s;
    auto entries = good();
    entries.push_back(c.entry);
    auto r = s.unpack(pack_bundle(entries, 3).value());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::invalid);
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
    EXPECT_EQ(TempDir::read(s.dir.file("escaped")), "");
    struct stat st {};
    EXPECT_NE(::lstat("/tmp/secbox-bundle-test-escaped", &st), 0);
    EXPECT_NE(::lstat((s.staging + "/web/passwd").c_str(), &st), 0);
  }
}

TEST(Bundle, TheUnpackedCapHoldsForTheHeaderAndForTheBytes) {
  Staging s;
  BundleLimits limits;
  limits.max_unpacked = 1000;
  auto entries = good();
  entries.push_back({"web/big", std::string(2000, 'z'), K::file, 0644});
  auto r = s.unpack(pack_bundle(entries, 3).value(), limits);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("more than 1000 bytes"), std::string::npos) << r.error().message;
  EXPECT_NE(::access((s.staging + "/web/big").c_str(), F_OK), 0)
      << "refused from its header, before a byte is written";

  Staging many;
  limits = BundleLimits{};
  limits.max_entries = 3;
  auto more = many.unpack(pack_bundle(good(), 3).value(), limits);
  ASSERT_FALSE(more);
  EXPECT_NE(more.error().message.find("more than 3 entries"), std::string::npos);
}

TEST(Bundle, OnlyATarCompressedWithZstdIsABundle) {
  {
    Staging s;
    auto r = s.unpack(tar_with(good(), ARCHIVE_FILTER_NONE));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("zstd"), std::string::npos) << r.error().message;
  }
  {
    Staging s;
    auto r = s.unpack(tar_with(good(), ARCHIVE_FILTER_GZIP));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("zstd"), std::string::npos) << r.error().message;
  }
  for (const std::string& garbage :
       {std::string(), std::string("not a tar at all"), std::string(5000, '\0')}) {
    Staging s;
    EXPECT_FALSE(s.unpack(garbage));
  }
  {
    Staging s;  // cut in the middle
    auto bytes = pack_bundle(good(), 3).value();
    EXPECT_FALSE(s.unpack(bytes.substr(0, bytes.size() / 2)));
  }
  {
    Staging s;
    auto r = s.unpack(pack_bundle({{"web", "", K::folder, 0755}}, 3).value());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("no secbox"), std::string::npos);
  }
  {
    Staging s;
    auto r = s.unpack(pack_bundle({{"secbox", "x", K::file, 0755}}, 3).value());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("no web/"), std::string::npos);
  }
}

}  // namespace
}  // namespace secbox::update
