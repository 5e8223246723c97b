#include "update/versions.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/atomic_file.hpp"
#include "update/built_in.hpp"
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

// Removes a tree without following any link in it (a folder the daemon
// wrote, or a half-unpacked bundle).
void remove_tree_at(int parent, const std::string& name, int depth = 0) {
  if (depth > 64) return;
  const int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    ::unlinkat(parent, name.c_str(), 0);
    return;
  }
  if (DIR* d = ::fdopendir(fd)) {
    std::vector<std::string> names;
    while (auto* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    for (const auto& n : names) remove_tree_at(::dirfd(d), n, depth + 1);
    ::closedir(d);
  } else {
    ::close(fd);
  }
  ::unlinkat(parent, name.c_str(), AT_REMOVEDIR);
}

void remove_tree(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const int parent = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent < 0) return;
  remove_tree_at(parent, path.substr(slash + 1));
  ::close(parent);
}

}  // namespace

bool VersionStore::valid_version(std::string_view v) {
  if (v.empty() || v.size() > 64 || !std::isalnum(static_cast<unsigned char>(v[0]))) return false;
  constexpr std::string_view kStaging = ".staging";  // a folder being staged, never a version
  if (v.size() >= kStaging.size() && v.substr(v.size() - kStaging.size()) == kStaging) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '_' ||
           c == '-';
  });
}

std::string VersionStore::binary(const std::string& version) const {
  return root_ + "/versions/" + version + "/secbox";
}

std::string VersionStore::manifest_of(const std::string& version) const {
  if (!valid_version(version)) return {};
  auto text = read_file(root_ + "/versions/" + version + "/manifest.json", kMaxManifestBytes);
  return text ? text.value() : std::string();
}

Result<void> VersionStore::stage_bundle(const std::string& version, int bundle_fd,
                                        const std::string& manifest_bytes,
                                        const BundleLimits& limits) {
  if (!valid_version(version))
    return stage_error("\"" + version.substr(0, 64) + "\" is not a version name");
  const std::string versions = root_ + "/versions";
  if (::mkdir(root_.c_str(), 0755) != 0 && errno != EEXIST)
    return stage_error("cannot make " + root_ + ": " + system_reason());
  if (::mkdir(versions.c_str(), 0755) != 0 && errno != EEXIST) {
    return stage_error("cannot make " + versions + ": " + system_reason());
  }
  const std::string final_dir = versions + "/" + version;
  struct stat st {};
  if (::lstat(final_dir.c_str(), &st) == 0) {
    // Staged before (an update asked again, a restart in the middle).
    if (manifest_of(version) == manifest_bytes) return ok();
    if (current() == version || known_good() == version) {
      return stage_error("version " + version +
                         " is staged already from another manifest, and in use");
    }
    remove_tree(final_dir);
  }
  const std::string staging = final_dir + ".staging";
  remove_tree(staging);  // what a crash during staging left
  if (::mkdir(staging.c_str(), 0755) != 0)
    return stage_error("cannot make " + staging + ": " + system_reason());
  struct Cleanup {
    std::string path;
    bool keep = false;
    ~Cleanup() {
      if (!keep) remove_tree(path);
    }
  } cleanup{staging};
  auto unpacked = unpack_bundle(bundle_fd, staging, limits);
  if (!unpacked) return unpacked.error();
  auto built_in = built_in_version_of_file(staging + "/secbox");
  if (!built_in) return Error{Errc::invalid, "the bundle's daemon: " + built_in.error().message};
  if (built_in.value() != version) {
    return Error{Errc::invalid, "the bundle's daemon is version " + built_in.value() +
                                    ", not the manifest's " + version};
  }
  if (auto w = write_file_atomically(staging + "/manifest.json", manifest_bytes,
                                     AtomicWriteOptions{0644, std::nullopt});
      !w) {
    return stage_error("cannot keep the manifest: " + w.error().message);
  }
  if (!fsync_path(staging, O_RDONLY | O_DIRECTORY) ||
      ::rename(staging.c_str(), final_dir.c_str()) != 0 ||
      !fsync_path(versions, O_RDONLY | O_DIRECTORY)) {
    return stage_error("cannot put version " + version + " in place: " + system_reason());
  }
  cleanup.keep = true;
  return ok();
}

Result<void> VersionStore::point(const std::string& link, const std::string& version) {
  if (!valid_version(version))
    return switch_error("\"" + version.substr(0, 64) + "\" is not a version name");
  struct stat st {};
  if (::stat(binary(version).c_str(), &st) != 0)
    return switch_error("version " + version + " is not staged");
  const std::string path = root_ + "/" + link;
  const std::string tmp = path + ".new";
  ::unlink(tmp.c_str());  // a crash between the two steps left it
  if (::symlink(("versions/" + version).c_str(), tmp.c_str()) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0 || !fsync_path(root_, O_RDONLY | O_DIRECTORY)) {
    return switch_error("cannot point " + link + " at " + version + ": " + system_reason());
  }
  return ok();
}

Result<void> VersionStore::set_current(const std::string& version) {
  return point("current", version);
}
Result<void> VersionStore::set_known_good(const std::string& version) {
  return point("known-good", version);
}

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
    remove_tree(root_ + "/versions/" + v);
  }
}

void VersionStore::remove(const std::string& version) const {
  if (!valid_version(version) || version == current() || version == known_good()) return;
  remove_tree(root_ + "/versions/" + version);
}

}  // namespace secbox::update
