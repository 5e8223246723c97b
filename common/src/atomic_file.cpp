#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace secbox {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

Result<void> write_file_atomically(const std::string& path, std::string_view content,
                                   const AtomicWriteOptions& options) {
  const std::string dir = dir_of(path);
  std::string tmpl = path + ".tmp.XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  Fd fd(::mkostemp(name.data(), O_CLOEXEC));
  if (fd.get() < 0) {
    return Error{Errc::io, "cannot create a temp file beside " + path + ": " + errno_text(errno)};
  }
  const std::string tmp(name.data());
  auto fail = [&](const std::string& what) -> Result<void> {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error{Errc::io, what + " " + tmp + ": " + errno_text(err)};
  };
  if (::fchmod(fd.get(), options.mode) != 0) return fail("cannot set the mode of");
  if (options.owner && ::fchown(fd.get(), options.owner->uid, options.owner->gid) != 0) {
    return fail("cannot set the owner of");
  }
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("cannot fsync");
  if (::close(fd.release()) != 0) return fail("cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename into " + path + " from");
  Fd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.get() < 0 || ::fsync(dirfd.get()) != 0) {
    return Error{Errc::io, "wrote " + path + " but cannot fsync its folder: " + errno_text(errno)};
  }
  return ok();
}

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ENOENT) return Error{Errc::not_found, path + " does not exist"};
    return Error{Errc::io, "cannot open " + path + ": " + errno_text(err)};
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{Errc::io, "cannot read " + path + ": " + errno_text(errno)};
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      return Error{Errc::too_large,
                   path + " is larger than " + std::to_string(max_bytes) + " bytes"};
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

FolderRead read_folder(const std::string& dir, const std::string& extension, std::size_t max_bytes,
                       std::size_t max_files) {
  FolderRead out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    if (ec != std::errc::no_such_file_or_directory)
      out.problems.push_back(dir + ": " + ec.message());
    return out;
  }
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : it) {
    if (entry.path().extension() != extension || !entry.is_regular_file(ec)) continue;
    if (paths.size() == max_files) {
      out.problems.push_back(dir + ": more than " + std::to_string(max_files) + " " + extension +
                             " files; the rest are ignored");
      break;
    }
    paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    auto text = read_file(path.string(), max_bytes);
    if (!text) {
      out.problems.push_back(path.filename().string() + ": " + text.error().message);
      continue;
    }
    out.files.push_back(
        FolderFile{path.stem().string(), path.filename().string(), std::move(text).value()});
  }
  return out;
}

}  // namespace secbox
