#pragma once
// A release as the cloud offers it (cloud-protocol §7.6): a manifest (the
// base64 of at most 4 KiB of JSON), its Ed25519 signature by the key the
// installer pinned, and a URL that only says where to fetch the bundle.
//
// check_offer() decides, before anything is downloaded, in the contract's
// order, and stops at the first check that fails: the signature over exactly
// the manifest's bytes; product and target; expiry; not the running version;
// the anti-rollback counter; a version rolled back before (until a higher
// counter). Pure: the caller reads the key and the box's record.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace secbox::update {

inline constexpr std::size_t kMaxManifestBytes = 4096;
inline constexpr std::uint64_t kMaxBundleBytes = 64ull << 20;     // the download
inline constexpr std::uint64_t kMaxUnpackedBytes = 256ull << 20;  // what it unpacks to
inline constexpr std::int64_t kMaxManifestLifeS = 30 * 24 * 3600;

struct Manifest {
  std::string product;  // "secbox"
  std::string target;   // linux-amd64, linux-arm64
  std::string version;
  std::uint64_t counter = 0;
  std::string sha256;  // the bundle's, 64 lowercase hex
  std::uint64_t size = 0;
  std::int64_t issued_at = 0;   // Unix seconds
  std::int64_t expires_at = 0;  // Unix seconds
};

// This build's platform, as a manifest names it.
std::string this_target();

// The manifest's JSON (the signed bytes), checked field by field: every field
// present with its type and rules, no other field. Error code "invalid".
Result<Manifest> parse_manifest(std::string_view json);

// The manifest's JSON for the release tool (the bytes to sign).
std::string manifest_json(const Manifest& m);

// Ed25519 over exactly `message` by the PEM public key. Error "invalid".
Result<void> verify_signature(std::string_view message, std::string_view signature,
                              const std::string& public_key_pem);
// Signs with a PEM private key (the release tool, the simulator).
Result<std::string> sign(std::string_view message, const std::string& private_key_pem);

// What the box knows when it judges an offer.
struct BoxRecord {
  std::string target = this_target();
  std::string running;                               // the running daemon's built-in version
  std::uint64_t counter = 0;                         // the highest counter of a committed version
  std::map<std::string, std::uint64_t> rolled_back;  // version -> the counter it was offered with
  std::int64_t now = 0;                              // Unix seconds
};

struct Offer {
  Manifest manifest;
  std::string bytes;  // the manifest as signed
};

// An Error names the refusal in a sentence; its code is Errc::invalid for a
// malformed field (update.apply's invalid_args) and Errc::forbidden for a
// refusal of the manifest. `version_seen`, when given, gets the manifest's
// version once its signature holds (for the refusal's report).
Result<Offer> check_offer(std::string_view manifest_b64, std::string_view signature_b64,
                          const std::string& public_key_pem, const BoxRecord& box,
                          std::string* version_seen = nullptr);

}  // namespace secbox::update
