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

namespace secbox::update {

class VersionStore {
 public:
  explicit VersionStore(std::string root) : root_(std::move(root)) {}

  // 1 to 64 of letters, digits, '.', '+', '_' or '-', starting with a letter
  // or digit, not ending in ".staging".
  static bool valid_version(std::string_view version);

  // The binary at `from` as `version` (mode 0755). A version already staged
  // with the same bytes is left as it is; with other bytes it is an error.
  Result<void> stage(const std::string& version, const std::string& from);
  Result<void> set_current(const std::string& version);
  Result<void> set_known_good(const std::string& version);

  std::optional<std::string> current() const;
  std::optional<std::string> known_good() const;
  std::vector<std::string> versions() const;  // staged ones, in name order
  // Removes every staged version but current, known-good and `keep`, so that
  // updates do not fill the disk. Errors are ignored: a version left is only space.
  void prune(const std::vector<std::string>& keep) const;
  std::string binary(const std::string& version) const;
  const std::string& root() const { return root_; }

 private:
  Result<void> point(const std::string& link, const std::string& version);
  std::optional<std::string> target(const std::string& link) const;

  std::string root_;
};

}  // namespace secbox::update
