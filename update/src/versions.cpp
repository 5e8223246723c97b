#include "update/versions.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "update/verify.hpp"

namespace secbox::update {
namespace {

Error stage_error(const std::string& why) { return Error{Errc::io, why}; }
Error switch_error(const std::string& why) { return Error{Errc::io, why}; }

std::string system_reason() { return std::strerror(errno); }

bool fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Copies with its bytes flushed to the disk before it is called done.
Result<void> copy_file(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return stage_error("cannot read " + from + ": " + system_reason());
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (out < 0) {
    ::close(in);
    return stage_error("cannot write " + to + ": " + system_reason());
  }
  char buf[1 << 16];
  bool good = true;
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      good = false;
      break;
    }
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(out, buf + off, static_cast<std::size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        good = false;
        break;
      }
      off += w;
    }
    if (!good) break;
  }
  good = good && ::fchmod(out, 0755) == 0 && ::fsync(out) == 0;
  const std::string reason = good ? "" : system_reason();
  ::close(in);
  if (::close(out) != 0) good = false;
  if (!good) return stage_error("cannot copy " + from + " to " + to + ": " + reason);
  return ok();
}

}  // namespace

bool VersionStore::valid_version(std::string_view v) {
  if (v.empty() || v.size() > 64 || !std::isalnum(static_cast<unsigned char>(v[0]))) return false;
  constexpr std::string_view kStaging = ".staging";  // a folder being staged, never a version
  if (v.size() >= kStaging.size() && v.substr(v.size() - kStaging.size()) == kStaging) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '_' || c == '-';
  });
}

std::string VersionStore::binary(const std::string& version) const {
  return root_ + "/versions/" + version + "/secbox";
}

Result<void> VersionStore::stage(const std::string& version, const std::string& from) {
  if (!valid_version(version)) return stage_error("\"" + version.substr(0, 64) + "\" is not a version name");
  const std::string versions = root_ + "/versions";
  if (::mkdir(root_.c_str(), 0755) != 0 && errno != EEXIST) return stage_error("cannot make " + root_ + ": " + system_reason());
  if (::mkdir(versions.c_str(), 0755) != 0 && errno != EEXIST) {
    return stage_error("cannot make " + versions + ": " + system_reason());
  }
  const std::string final_dir = versions + "/" + version;
  struct stat st {};
  if (::stat(final_dir.c_str(), &st) == 0) {
    // Staged before (an update asked again, a restart in the middle).
    auto have = file_sha256(binary(version));
    auto want = file_sha256(from);
    if (have && want && have.value() == want.value()) return ok();
    return stage_error("version " + version + " is staged already with other bytes");
  }
  const std::string staging = final_dir + ".staging";
  ::unlink((staging + "/secbox").c_str());  // what a crash during staging left
  ::rmdir(staging.c_str());
  if (::mkdir(staging.c_str(), 0755) != 0) return stage_error("cannot make " + staging + ": " + system_reason());
  if (auto c = copy_file(from, staging + "/secbox"); !c) return c;
  if (!fsync_path(staging, O_RDONLY | O_DIRECTORY) || ::rename(staging.c_str(), final_dir.c_str()) != 0 ||
      !fsync_path(versions, O_RDONLY | O_DIRECTORY)) {
    return stage_error("cannot put version " + version + " in place: " + system_reason());
  }
  return ok();
}

Result<void> VersionStore::point(const std::string& link, const std::string& version) {
  if (!valid_version(version)) return switch_error("\"" + version.substr(0, 64) + "\" is not a version name");
  struct stat st {};
  if (::stat(binary(version).c_str(), &st) != 0) return switch_error("version " + version + " is not staged");
  const std::string path = root_ + "/" + link;
  const std::string tmp = path + ".new";
  ::unlink(tmp.c_str());  // a crash between the two steps left it
  if (::symlink(("versions/" + version).c_str(), tmp.c_str()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0 ||
      !fsync_path(root_, O_RDONLY | O_DIRECTORY)) {
    return switch_error("cannot point " + link + " at " + version + ": " + system_reason());
  }
  return ok();
}

Result<void> VersionStore::set_current(const std::string& version) { return point("current", version); }
Result<void> VersionStore::set_known_good(const std::string& version) { return point("known-good", version); }

std::optional<std::string> VersionStore::target(const std::string& link) const {
  char buf[256];
  const ssize_t n = ::readlink((root_ + "/" + link).c_str(), buf, sizeof buf - 1);
  if (n <= 0) return std::nullopt;
  std::string t(buf, static_cast<std::size_t>(n));
  if (t.rfind("versions/", 0) != 0 || !valid_version(t.substr(9))) return std::nullopt;
  return t.substr(9);
}

std::optional<std::string> VersionStore::current() const { return target("current"); }
std::optional<std::string> VersionStore::known_good() const { return target("known-good"); }

std::vector<std::string> VersionStore::versions() const {
  std::vector<std::string> out;
  DIR* d = ::opendir((root_ + "/versions").c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    const std::string name = e->d_name;
    struct stat st {};
    if (valid_version(name) && ::stat(binary(name).c_str(), &st) == 0) out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void VersionStore::prune(const std::vector<std::string>& keep) const {
  const auto cur = current();
  const auto good = known_good();
  for (const auto& v : versions()) {
    if (v == cur || v == good || std::find(keep.begin(), keep.end(), v) != keep.end()) continue;
    const std::string dir = root_ + "/versions/" + v;
    ::unlink((dir + "/secbox").c_str());
    ::rmdir(dir.c_str());
  }
}

}  // namespace secbox::update
