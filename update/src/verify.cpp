#include "update/verify.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "common/hex.hpp"
#include "common/pin_hash.hpp"

namespace secbox::update {
namespace {

Error fail(const std::string& why) { return Error{Errc::invalid, why}; }

// The file mapped read-only for the checks: Ed25519 signs the whole message
// in one call, and a 256 MiB file need not be copied onto the heap for it.
class Mapped {
 public:
  static Result<Mapped> open(const std::string& path, std::uint64_t max_bytes) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("cannot open the downloaded file");
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return fail("the downloaded file is not a regular file");
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > max_bytes) {
      ::close(fd);
      return fail("the file is " + std::to_string(size) + " bytes, over the " + std::to_string(max_bytes) +
                  "-byte limit");
    }
    Mapped m;
    m.size_ = size;
    if (size > 0) {
      void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return fail("cannot read the downloaded file");
      }
      m.data_ = static_cast<const unsigned char*>(p);
    }
    ::close(fd);
    return m;
  }
  Mapped() = default;
  Mapped(Mapped&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; }
  Mapped& operator=(Mapped&&) = delete;
  ~Mapped() {
    if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
  }
  const unsigned char* data() const { return data_ ? data_ : reinterpret_cast<const unsigned char*>(""); }
  std::uint64_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  std::uint64_t size_ = 0;
};

std::string sha256_of(const Mapped& m) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(m.data(), m.size(), digest, &n, EVP_sha256(), nullptr);
  return to_hex(digest, n);
}

}  // namespace

Result<std::string> file_sha256(const std::string& path, std::uint64_t max_bytes) {
  auto m = Mapped::open(path, max_bytes);
  if (!m) return m.error();
  return sha256_of(m.value());
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

Result<void> verify_update(const std::string& path, const Expected& expected, const std::string& public_key_pem,
                           std::uint64_t max_bytes) {
  if (expected.size > max_bytes) {
    return fail("the announced size " + std::to_string(expected.size) + " is over the " +
                std::to_string(max_bytes) + "-byte limit");
  }
  if (!is_sha256_hex(expected.sha256_hex)) return fail("sha256 is not 64 hexadecimal digits");
  std::string want = expected.sha256_hex;
  std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
  auto signature = base64_decode(expected.signature_b64);
  if (!signature || signature->size() != 64) return fail("the signature is not the base64 of 64 bytes");

  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return fail("the pinned update key is not an Ed25519 public key in PEM");
  }

  auto m = Mapped::open(path, max_bytes);
  if (!m) return m.error();
  if (m.value().size() != expected.size) {
    return fail("the file is " + std::to_string(m.value().size()) + " bytes, not the announced " +
                std::to_string(expected.size));
  }
  if (sha256_of(m.value()) != want) return fail("the file's SHA-256 is not the announced one");

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return fail("the signature cannot be checked");
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
                       m.value().data(), m.value().size()) != 1) {
    return fail("the signature is not the pinned key's signature of this file");
  }
  return ok();
}

}  // namespace secbox::update
