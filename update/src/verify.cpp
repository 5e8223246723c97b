#include "update/verify.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "common/hex.hpp"

namespace secbox::update {
namespace {

Error fail(const std::string& why) { return Error{Errc::invalid, why}; }

}  // namespace

Result<std::string> fd_sha256(int fd, std::uint64_t max_bytes) {
  if (::lseek(fd, 0, SEEK_SET) != 0) return Error{Errc::io, "cannot read the file from its start"};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return Error{Errc::internal, "no SHA-256"};
  std::vector<unsigned char> buf(1 << 16);
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{Errc::io, "cannot read the file"};
    }
    total += static_cast<std::uint64_t>(n);
    if (total > max_bytes)
      return Error{Errc::too_large, "the file is over " + std::to_string(max_bytes) + " bytes"};
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  if (::lseek(fd, 0, SEEK_SET) != 0) return Error{Errc::io, "cannot read the file from its start"};
  return to_hex(digest, len);
}

Result<std::string> file_sha256(const std::string& path, std::uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{Errc::io, "cannot open " + path};
  auto r = fd_sha256(fd, max_bytes);
  ::close(fd);
  return r;
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 &&
         text.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

Result<void> check_bundle(int fd, std::uint64_t size, const std::string& sha256_hex) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return fail("the bundle is not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) != size) {
    return fail("the bundle is " + std::to_string(st.st_size) + " bytes, not the manifest's " +
                std::to_string(size));
  }
  auto sha = fd_sha256(fd, size);
  if (!sha) return fail("the bundle cannot be read: " + sha.error().message);
  if (sha.value() != sha256_hex) return fail("the bundle's SHA-256 is not the manifest's");
  return ok();
}

}  // namespace secbox::update
