// The release bundle (update/bundle.hpp): any bytes unpacked into a fresh
// folder. Nothing may be written outside it, and what it leaves holds only
// files and folders.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "update/bundle.hpp"

namespace {

// Checks the tree (no link, no device) and removes it.
void check_and_remove(const std::string& path, int depth = 0) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) __builtin_trap();
  if (S_ISDIR(st.st_mode)) {
    if (depth > 300) __builtin_trap();
    if (DIR* d = ::opendir(path.c_str())) {
      while (auto* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") check_and_remove(path + "/" + n, depth + 1);
      }
      ::closedir(d);
    }
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string base = [] {
    char tmpl[] = "/tmp/secbox-bundle-fuzz-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (!d) std::abort();
    return std::string(d);
  }();
  const std::string input = base + "/in";
  const std::string staging = base + "/staging";
  const int fd = ::open(input.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, data, size) != static_cast<ssize_t>(size) ||
      ::lseek(fd, 0, SEEK_SET) != 0)
    std::abort();
  ::mkdir(staging.c_str(), 0755);
  secbox::update::BundleLimits limits;
  limits.max_unpacked = 1 << 20;
  limits.max_entries = 200;
  (void)secbox::update::unpack_bundle(fd, staging, limits);
  ::close(fd);
  check_and_remove(staging);
  // Only `in` and `staging` were ever in the base folder.
  if (DIR* d = ::opendir(base.c_str())) {
    while (auto* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != ".." && n != "in") __builtin_trap();
    }
    ::closedir(d);
  }
  return 0;
}
