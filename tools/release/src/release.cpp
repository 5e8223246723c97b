#include "release/release.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/hex.hpp"
#include "update/built_in.hpp"
#include "update/bundle.hpp"
#include "update/versions.hpp"

#include <openssl/evp.h>

namespace secbox::release {
namespace {

Error invalid(const std::string& why) { return Error{Errc::invalid, why}; }

// web/'s entries, folders before what they hold, in name order.
Result<void> add_tree(const std::string& dir, const std::string& name,
                      std::vector<update::BundleEntry>& out, int depth = 0) {
  if (depth > 16) return invalid(dir + " is nested too deep");
  out.push_back({name, "", update::BundleEntry::Kind::folder, 0755});
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Error{Errc::io, "cannot read " + dir + ": " + std::strerror(errno)};
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    const std::string path = dir + "/" + n;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return Error{Errc::io, "cannot read " + path};
    if (S_ISDIR(st.st_mode)) {
      if (auto r = add_tree(path, name + "/" + n, out, depth + 1); !r) return r;
    } else if (S_ISREG(st.st_mode)) {
      auto bytes = read_file(path, update::kMaxUnpackedBytes);
      if (!bytes) return bytes.error();
      out.push_back(
          {name + "/" + n, std::move(bytes).value(), update::BundleEntry::Kind::file, 0644});
    } else {
      return invalid(path + " is neither a file nor a folder; a bundle holds only those");
    }
  }
  return ok();
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  return to_hex(digest, len);
}

}  // namespace

Result<std::string> bundle_bytes(const std::string& daemon_bytes, const std::string& web_dir,
                                 int zstd_level) {
  std::vector<update::BundleEntry> entries;
  entries.push_back({"secbox", daemon_bytes, update::BundleEntry::Kind::file, 0755});
  if (auto r = add_tree(web_dir, "web", entries); !r) return r.error();
  return update::pack_bundle(entries, zstd_level);
}

Result<Release> make_release(const ReleaseRequest& q) {
  if (!update::VersionStore::valid_version(q.version))
    return invalid("\"" + q.version + "\" is not a version name");
  auto daemon = read_file(q.daemon, update::kMaxUnpackedBytes);
  if (!daemon) return daemon.error();
  std::string bytes = std::move(daemon).value();
  if (q.stamp) {
    auto stamped = update::stamp_version(std::move(bytes), q.version);
    if (!stamped) return Error{Errc::invalid, q.daemon + ": " + stamped.error().message};
    bytes = std::move(stamped).value();
  }
  auto key = read_file(q.key_file, 1 << 16);
  if (!key)
    return Error{key.error().code,
                 "cannot read the signing key " + q.key_file + ": " + key.error().message};
  auto bundle = bundle_bytes(bytes, q.web_dir, q.zstd_level);
  if (!bundle) return bundle.error();
  if (bundle.value().size() > update::kMaxBundleBytes) {
    return invalid("the bundle is " + std::to_string(bundle.value().size()) +
                   " bytes, over the 64 MiB a manifest allows");
  }

  update::Manifest m;
  m.product = "secbox";
  m.target = q.target;
  m.version = q.version;
  m.counter = q.counter;
  m.sha256 = sha256_hex(bundle.value());
  m.size = bundle.value().size();
  m.issued_at = q.issued_at != 0 ? q.issued_at
                                 : std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
  m.expires_at = m.issued_at + q.valid_s;
  const std::string manifest = update::manifest_json(m);
  auto signature = update::sign(manifest, key.value());
  if (!signature) return signature.error();

  if (::mkdir(q.out_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error{Errc::io, "cannot make " + q.out_dir + ": " + std::strerror(errno)};
  }
  Release r{q.out_dir, q.out_dir + "/secbox.tar.zst", q.out_dir + "/manifest.json",
            q.out_dir + "/manifest.sig", m};
  const AtomicWriteOptions mode{0644, std::nullopt};
  if (auto w = write_file_atomically(r.bundle, bundle.value(), mode); !w) return w.error();
  if (auto w = write_file_atomically(r.manifest, manifest, mode); !w) return w.error();
  if (auto w = write_file_atomically(r.signature, signature.value(), mode); !w) return w.error();
  return r;
}

}  // namespace secbox::release
