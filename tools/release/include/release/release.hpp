#pragma once
// Making a release (cloud-protocol §7.6): the daemon with the release's
// version stamped in, and the guard app, packed as a tar+zstd bundle; the
// manifest that names it; the manifest's Ed25519 signature. What the cloud
// offers in update.apply, what install.sh installs, what the simulator serves.
//
// The release folder holds exactly:
//   secbox.tar.zst   the bundle
//   manifest.json    the manifest's bytes, as signed
//   manifest.sig     the 64 raw bytes of the signature (openssl pkeyutl's form)
#include <cstdint>
#include <string>

#include "common/result.hpp"
#include "update/manifest.hpp"

namespace secbox::release {

struct ReleaseRequest {
  std::string daemon;   // the daemon binary (stripped, for a real release)
  std::string web_dir;  // the built guard app
  std::string version;  // stamped into the daemon, and the manifest's
  std::uint64_t counter = 0;
  std::string target = update::this_target();
  std::string key_file;        // the Ed25519 private key, PEM
  std::int64_t issued_at = 0;  // Unix seconds; 0: now
  std::int64_t valid_s = 30 * 24 * 3600;
  std::string out_dir;  // made when missing
  bool stamp = true;    // false: the daemon as it is (a test of a mismatch)
  int zstd_level = 19;
};

struct Release {
  std::string dir, bundle, manifest, signature;  // paths
  update::Manifest fields;
};

// Blocking (reads and writes files, compresses): a tool or a test.
Result<Release> make_release(const ReleaseRequest& request);

// The bundle's entries from a daemon's bytes and a web folder (regular files
// and folders only; anything else there is an error).
Result<std::string> bundle_bytes(const std::string& daemon_bytes, const std::string& web_dir,
                                 int zstd_level);

}  // namespace secbox::release
