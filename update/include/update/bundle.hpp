#pragma once
// The release bundle (cloud-protocol §7.6): a tar archive compressed with
// zstd that holds exactly `secbox` (the daemon) and `web/` (the guard app).
// It is unpacked without trusting it: regular files and folders only, each
// made anew (O_EXCL, no link followed) under a fresh staging folder, names
// relative and without `..`, at most kMaxUnpackedBytes in all. Anything else
// stops the unpack with a sentence naming the entry, before anything is
// written outside the staging folder (which the caller removes).
//
// Blocking (files, decompression): a worker or the CLI.
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "update/manifest.hpp"

namespace secbox::update {

struct BundleLimits {
  std::uint64_t max_unpacked = kMaxUnpackedBytes;
  std::size_t max_entries = 20000;
  std::size_t max_name = 255;
};

struct Unpacked {
  std::uint64_t bytes = 0;  // file bytes written
  std::size_t files = 0;
  std::size_t folders = 0;
};

// Unpacks the archive read from `fd` into `staging_dir`, a folder that
// exists and is empty. Error code "invalid" for a refused bundle, "io" when
// the disk refuses.
Result<Unpacked> unpack_bundle(int fd, const std::string& staging_dir,
                               const BundleLimits& limits = {});

// One file of a bundle as the release tool writes it.
struct BundleEntry {
  enum class Kind { file, folder, symlink, hardlink, device, fifo };
  std::string name;   // "secbox", "web", "web/index.html"
  std::string bytes;  // a file's content; a link's target
  Kind kind = Kind::file;
  unsigned mode = 0644;
};
// The tar+zstd bytes of these entries, in this order (the release tool; tests
// write hostile bundles with their own entries).
Result<std::string> pack_bundle(const std::vector<BundleEntry>& entries, int zstd_level = 19);

}  // namespace secbox::update
