#pragma once
// Structured logging: one JSON object a line on stderr ({"ts","level",
// "component","msg",…fields}), or a human-readable line when
// SECBOX_ENV=development. Any thread may log; a line is written whole.
//
// Redaction is applied to every line before it is written, so that no JWT,
// token, PIN or env value can reach the log:
//  - a field whose name says it is secret (jwt, token, secret, password, pin,
//    bootstrap, authorization, cookie, value, credential) is printed as
//    "[redacted]";
//  - every value registered with add_secret() is replaced wherever it appears,
//    in the message and in every field;
//  - anything shaped like a JWS compact token ("eyJ….….…") or a bearer
//    credential ("Bearer …") is replaced.
//
// Repeated warnings and errors are rate-limited: of the lines with the same
// component and message, at most repeat_burst are written per repeat_window;
// the first one written after that carries "suppressed": how many were not.
// Lines differing only in their fields count as the same line.
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace secbox::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

std::optional<Level> parse_level(std::string_view text);
std::string_view level_name(Level level);

struct Field {
  using Value = std::variant<std::string, std::int64_t, double, bool>;

  Field(std::string_view k, std::string_view v) : key(k), value(std::string(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string(v)) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Field(std::string_view k, T v) : key(k), value(static_cast<std::int64_t>(v)) {}

  std::string key;
  Value value;
};

using Fields = std::initializer_list<Field>;

struct Options {
  bool human = false;
  Level min_level = Level::info;
  int repeat_burst = 10;
  std::chrono::milliseconds repeat_window{60000};
};

// Process-wide settings; safe to call at any time from any thread.
void configure(const Options& options);
Options current_options();

// Replaces the output (stderr) with a callback receiving each finished line,
// without its newline. Tests use it; pass nullptr to restore stderr.
void set_sink(std::function<void(std::string_view)> sink);

// Registers a value that must never be printed (a token, a PIN, an env value).
// Values shorter than 4 bytes are ignored: they would redact ordinary words.
void add_secret(std::string_view value);
// A secret that stops mattering once newer ones of its kind exist (a
// bootstrap token from a pasted QR code, a device token replaced by its
// rotation): only the newest 32 of these are kept, so pasting QR codes
// without end cannot grow the list, nor push out the lasting ones above.
void add_transient_secret(std::string_view value);
void clear_secrets();
// How many values are registered (lasting and transient).
std::size_t secret_count();

// The redaction applied to every string that reaches a log line.
std::string redact(std::string_view text);
bool is_secret_field_name(std::string_view key);

// A named logger for one component. Cheap to copy.
class Logger {
 public:
  explicit Logger(std::string component) : component_(std::move(component)) {}

  void debug(std::string_view msg, Fields fields = {}) const { write(Level::debug, msg, fields); }
  void info(std::string_view msg, Fields fields = {}) const { write(Level::info, msg, fields); }
  void warn(std::string_view msg, Fields fields = {}) const { write(Level::warn, msg, fields); }
  void error(std::string_view msg, Fields fields = {}) const { write(Level::error, msg, fields); }
  void write(Level level, std::string_view msg, Fields fields) const;

  bool enabled(Level level) const;
  const std::string& component() const { return component_; }

 private:
  std::string component_;
};

}  // namespace secbox::log
