#include "update/bundle.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

namespace secbox::update {
namespace {

Error refused(const std::string& why) { return Error{Errc::invalid, why}; }

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd >= 0) ::close(fd);
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// A name as it may appear in the bundle: printable ASCII without spaces or
// backslashes, relative, no empty, "." or ".." component. A leading "./" is
// dropped (GNU tar writes it for `-C dir .`), as is a folder's trailing "/".
std::optional<std::vector<std::string>> split_name(std::string name, std::size_t max_name) {
  if (name.rfind("./", 0) == 0) name.erase(0, 2);
  if (!name.empty() && name.back() == '/') name.pop_back();
  if (name.empty() || name.size() > max_name || name.front() == '/') return std::nullopt;
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f || c == '\\') return std::nullopt;
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto slash = name.find('/', start);
    std::string part =
        name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return std::nullopt;
    parts.push_back(std::move(part));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

std::string shown(const char* name) {
  std::string s = name ? name : "";
  if (s.size() > 80) s = s.substr(0, 80) + "…";
  for (auto& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return "\"" + s + "\"";
}

// Opens (making it when missing) each folder of `parts` but the last, under
// `root`, never following a link.
Result<Fd> open_parent(int root, const std::vector<std::string>& parts) {
  Fd at(::dup(root));
  if (at.fd < 0) return Error{Errc::io, std::strerror(errno)};
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    int next = ::openat(at.fd, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT) {
      if (::mkdirat(at.fd, parts[i].c_str(), 0755) != 0)
        return Error{Errc::io, std::strerror(errno)};
      next = ::openat(at.fd, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) return refused("a folder in the bundle is not a folder");
    at = Fd(next);
  }
  return at;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

Result<Unpacked> unpack_bundle(int fd, const std::string& staging_dir, const BundleLimits& limits) {
  Fd root(::open(staging_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.fd < 0)
    return Error{Errc::io, "cannot open " + staging_dir + ": " + std::strerror(errno)};
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  if (!a) return Error{Errc::internal, "libarchive cannot start"};
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK) {
    return refused("the bundle is not a tar archive compressed with zstd");
  }
  Unpacked u;
  bool daemon = false, web = false;
  std::size_t entries = 0;
  std::vector<char> buf(1 << 16);
  for (;;) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      return refused(entries == 0
                         ? "the bundle is not a tar archive compressed with zstd"
                         : std::string("the bundle is damaged: ") + archive_error_string(a.get()));
    }
    if (entries == 0) {
      const int filter = archive_filter_code(a.get(), 0);
      if (filter != ARCHIVE_FILTER_ZSTD) return refused("the bundle is not compressed with zstd");
    }
    if (++entries > limits.max_entries)
      return refused("the bundle has more than " + std::to_string(limits.max_entries) + " entries");
    const char* raw = archive_entry_pathname(e);
    const std::string name = raw ? raw : "";
    if (name == "." || name == "./") continue;  // the top folder of `tar -C dir .`
    const auto parts = split_name(name, limits.max_name);
    if (!parts)
      return refused("the bundle holds the name " + shown(raw) +
                     " (absolute, with .. or unreadable)");
    const auto type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != nullptr)
      return refused("the bundle holds a hard link, " + shown(raw));
    if (type == AE_IFLNK || archive_entry_symlink(e) != nullptr)
      return refused("the bundle holds a link, " + shown(raw));
    if (type != AE_IFREG && type != AE_IFDIR) {
      return refused("the bundle holds " + shown(raw) + ", which is neither a file nor a folder");
    }
    if (archive_entry_sparse_count(e) > 0)
      return refused("the bundle holds a sparse file, " + shown(raw));
    const std::string& top = parts->front();
    const bool is_daemon = parts->size() == 1 && top == "secbox";
    if (!is_daemon && top != "web")
      return refused("the bundle holds " + shown(raw) + ": only secbox and web/ belong in it");
    if (top == "secbox" && type != AE_IFREG) return refused("the bundle's secbox is not a file");
    if (parts->size() == 1 && top == "web" && type != AE_IFDIR)
      return refused("the bundle's web is not a folder");

    auto parent = open_parent(root.fd, *parts);
    if (!parent) return parent.error();
    const std::string& leaf = parts->back();
    if (type == AE_IFDIR) {
      if (::mkdirat(parent.value().fd, leaf.c_str(), 0755) != 0) {
        struct stat st {};
        if (errno != EEXIST ||
            ::fstatat(parent.value().fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode)) {
          return refused("the bundle's folder " + shown(raw) + " cannot be made (given twice?)");
        }
      }
      ++u.folders;
      web = web || top == "web";
      continue;
    }
    if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
        u.bytes + static_cast<std::uint64_t>(archive_entry_size(e)) > limits.max_unpacked) {
      return refused("the bundle unpacks to more than " + std::to_string(limits.max_unpacked) +
                     " bytes");
    }
    Fd out(::openat(parent.value().fd, leaf.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, is_daemon ? 0755 : 0644));
    if (out.fd < 0) {
      return errno == EEXIST
                 ? refused("the bundle holds " + shown(raw) + " twice")
                 : Error{Errc::io, "cannot write " + name + ": " + std::strerror(errno)};
    }
    for (;;) {
      const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0)
        return refused(std::string("the bundle is damaged: ") + archive_error_string(a.get()));
      u.bytes += static_cast<std::uint64_t>(n);
      if (u.bytes > limits.max_unpacked) {
        return refused("the bundle unpacks to more than " + std::to_string(limits.max_unpacked) +
                       " bytes");
      }
      if (!write_all(out.fd, buf.data(), static_cast<std::size_t>(n))) {
        return Error{Errc::io, "cannot write " + name + ": " + std::strerror(errno)};
      }
    }
    if (::fsync(out.fd) != 0)
      return Error{Errc::io, "cannot flush " + name + ": " + std::strerror(errno)};
    ++u.files;
    daemon = daemon || is_daemon;
    web = web || top == "web";
  }
  if (!daemon) return refused("the bundle has no secbox");
  if (!web) return refused("the bundle has no web/");
  return u;
}

Result<std::string> pack_bundle(const std::vector<BundleEntry>& entries, int zstd_level) {
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(),
                                                            archive_write_free);
  if (!a) return Error{Errc::internal, "libarchive cannot start"};
  std::string out;
  const std::string level = std::to_string(zstd_level);
  if (archive_write_add_filter_zstd(a.get()) != ARCHIVE_OK ||
      archive_write_set_filter_option(a.get(), "zstd", "compression-level", level.c_str()) !=
          ARCHIVE_OK ||
      archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK) {
    return Error{Errc::internal, std::string("libarchive: ") + archive_error_string(a.get())};
  }
  auto write_cb = [](archive*, void* client, const void* buf, std::size_t n) -> la_ssize_t {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  };
  if (archive_write_open(a.get(), &out, nullptr, write_cb, nullptr) != ARCHIVE_OK) {
    return Error{Errc::internal, std::string("libarchive: ") + archive_error_string(a.get())};
  }
  for (const auto& be : entries) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                    archive_entry_free);
    archive_entry_set_pathname(e.get(), be.name.c_str());
    archive_entry_set_mtime(e.get(), 0, 0);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_perm(e.get(), be.mode);
    using K = BundleEntry::Kind;
    switch (be.kind) {
      case K::file:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(be.bytes.size()));
        break;
      case K::folder:
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        break;
      case K::symlink:
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_symlink(e.get(), be.bytes.c_str());
        break;
      case K::hardlink:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_hardlink(e.get(), be.bytes.c_str());
        break;
      case K::device:
        archive_entry_set_filetype(e.get(), AE_IFCHR);
        archive_entry_set_rdevmajor(e.get(), 1);
        archive_entry_set_rdevminor(e.get(), 3);
        break;
      case K::fifo:
        archive_entry_set_filetype(e.get(), AE_IFIFO);
        break;
    }
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
      return Error{Errc::internal, std::string("libarchive: ") + archive_error_string(a.get())};
    }
    if (be.kind == K::file && !be.bytes.empty() &&
        archive_write_data(a.get(), be.bytes.data(), be.bytes.size()) !=
            static_cast<la_ssize_t>(be.bytes.size())) {
      return Error{Errc::internal, std::string("libarchive: ") + archive_error_string(a.get())};
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return Error{Errc::internal, std::string("libarchive: ") + archive_error_string(a.get())};
  }
  return out;
}

}  // namespace secbox::update
