#pragma once
// Versions side by side, so that an update never writes over the running
// binary and a bad one can be left by switching a link back:
//   <root>/versions/<version>/secbox     staged once, never written again
//   <root>/current    -> versions/<version>   what the unit starts
//   <root>/known-good -> versions/<version>   the last version that passed its trial
// A link is switched by renaming a new link over it, so a power cut at any
// moment leaves the old target or the new one, never none. Staging copies the
// file into versions/<version>.staging, flushes it, then renames the folder
// into place: a half-copied version is never a version.
//
// Blocking (files): a worker, or the CLI. Errors carry the §7.6 phase as
// their code: "stage" or "switch".
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "update/bundle.hpp"

namespace secbox::update {

class VersionStore {
 public:
  explicit VersionStore(std::string root) : root_(std::move(root)) {}

  // 1 to 64 of letters, digits, '.', '+', '_' or '-', starting with a letter
  // or digit, not ending in ".staging".
  static bool valid_version(std::string_view version);

  // Unpacks the bundle read from `bundle_fd` (update/bundle.hpp) into
  // versions/<version>.staging, checks that its daemon's built-in version is
  // `version`, keeps the manifest beside it (manifest.json, the signed
  // bytes), flushes it and renames it into place. A version staged before
  // from the same manifest is left as it is; one from another manifest is
  // replaced unless it is current or known-good. Error codes: "invalid" for a
  // refused bundle (nothing is left), "io" when the disk refuses.
  Result<void> stage_bundle(const std::string& version, int bundle_fd,
                            const std::string& manifest_bytes, const BundleLimits& limits = {});
  // The manifest a version was staged from ("" when it has none: a version
  // install.sh laid out from a binary).
  std::string manifest_of(const std::string& version) const;
  Result<void> set_current(const std::string& version);
  Result<void> set_known_good(const std::string& version);

  std::optional<std::string> current() const;
  std::optional<std::string> known_good() const;
  std::vector<std::string> versions() const;  // staged ones, in name order
  // Removes every staged version but current, known-good and `keep`, so that
  // updates do not fill the disk. Errors are ignored: a version left is only space.
  void prune(const std::vector<std::string>& keep) const;
  // Removes one version's folder unless it is current or known-good.
  void remove(const std::string& version) const;
  std::string binary(const std::string& version) const;
  const std::string& root() const { return root_; }

 private:
  Result<void> point(const std::string& link, const std::string& version);
  std::optional<std::string> target(const std::string& link) const;

  std::string root_;
};

}  // namespace secbox::update
