#pragma once
// An env file in systemd EnvironmentFile syntax, as systemd reads it:
// comments (# or ; at the start of a line), blank lines, an optional
// `export ` prefix, single quotes (literal), double quotes (\" \\ \` \$
// escapes), backslash escapes and line continuations outside quotes, and
// trailing white space trimmed from unquoted values. Stricter than systemd
// where systemd would silently misread: an unterminated quote, a newline inside
// quotes, a line without '=', NUL bytes and invalid UTF-8 are errors naming the
// line (and the key, never the value).
//
// Pure functions; any thread. Error codes: "parse", "invalid_key",
// "invalid_value", and those of read_file/write_file_atomically.
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/result.hpp"

namespace secbox::envfile {

struct Entry {
  std::string key;
  std::string value;
  int line = 0;  // where it was last assigned; 0 if set in code
};

class EnvFile {
 public:
  // Keys keep the order of their first assignment; a later one replaces the value.
  const std::vector<Entry>& entries() const { return entries_; }
  std::optional<std::string> get(std::string_view key) const;
  bool has_nonempty(std::string_view key) const;
  bool empty() const { return entries_.empty(); }
  void set(std::string_view key, std::string_view value, int line = 0);
  bool unset(std::string_view key);

  friend bool operator==(const EnvFile& a, const EnvFile& b);

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;  // key -> position in entries_
};

constexpr std::size_t kMaxEnvFileBytes = 8 * 1024 * 1024;

// `source` names the file in error messages ("secbox.env line 3: …").
Result<EnvFile> parse(std::string_view text, std::string_view source = "env file");

// Keys the box writes: ^[A-Z_][A-Z0-9_]*$. Values: no newline, carriage
// return or NUL (systemd ends a line at either), valid UTF-8.
Result<void> validate_key(std::string_view key);
Result<void> validate_value(std::string_view key, std::string_view value);

// Text that parse() reads back as the same entries; refuses invalid ones.
Result<std::string> serialize(const EnvFile& env);

// Reads and parses a file (code "not_found" when absent).
Result<EnvFile> load(const std::string& path);

// serialize() then write_file_atomically() with mode 0600.
Result<void> save(const std::string& path, const EnvFile& env,
                  std::optional<FileOwner> owner = std::nullopt);

bool is_valid_utf8(std::string_view text);

}  // namespace secbox::envfile
