#include "common/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/time.hpp"

namespace secbox::log {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

struct State {
  std::mutex write_mutex;
  std::function<void(std::string_view)> sink;
  std::atomic<int> min_level{static_cast<int>(Level::info)};
  std::atomic<bool> human{false};
  std::shared_mutex secrets_mutex;
  std::vector<std::string> secrets;   // lasting, longest first
  std::deque<std::string> transient;  // newest last, at most kMaxTransient
  // Rate limiting of repeated warnings and errors, by component and message.
  struct Repeat {
    std::chrono::steady_clock::time_point window_start;
    int written = 0;
    std::int64_t suppressed = 0;
  };
  std::mutex repeat_mutex;
  std::unordered_map<std::string, Repeat> repeats;  // at most kMaxRepeatKeys
  std::atomic<int> repeat_burst{10};
  std::atomic<std::int64_t> repeat_window_ms{60000};
};

constexpr std::size_t kMaxRepeatKeys = 1024;

State& state() {
  static State* s = new State();  // never destroyed: logging may happen during exit
  return *s;
}

bool is_b64url(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '=';
}

// Replaces "eyJ<b64>.<b64>[.<b64>]" (a JWS or JWT) with the redaction marker.
std::string scrub_jwts(std::string text) {
  std::size_t pos = 0;
  while ((pos = text.find("eyJ", pos)) != std::string::npos) {
    std::size_t end = pos;
    int dots = 0;
    while (end < text.size() && (is_b64url(text[end]) || text[end] == '.')) {
      if (text[end] == '.') ++dots;
      ++end;
    }
    if (dots >= 1 && end - pos >= 16) {
      text.replace(pos, end - pos, kRedacted);
      pos += kRedacted.size();
    } else {
      pos = end;
    }
  }
  return text;
}

// Replaces the user and password of every URL (scheme://user:pass@host):
// ffmpeg prints "rtsp://admin:hunter2@10.0.0.5/…: Server returned 401".
std::string scrub_url_credentials(std::string text) {
  std::size_t pos = 0;
  while ((pos = text.find("://", pos)) != std::string::npos) {
    const std::size_t start = pos + 3;
    std::size_t end = start;
    while (end < text.size() && text[end] != '@' && text[end] != '/' && text[end] != '"' &&
           text[end] != '\'' && !std::isspace(static_cast<unsigned char>(text[end]))) {
      ++end;
    }
    if (end < text.size() && text[end] == '@' && end > start) {
      text.replace(start, end - start, kRedacted);
      pos = start + kRedacted.size() + 1;
    } else {
      pos = start;
    }
  }
  return text;
}

// Replaces what follows "Bearer " (any case) up to the next space or quote.
std::string scrub_bearer(std::string text) {
  static constexpr std::string_view kWord = "bearer ";
  std::size_t pos = 0;
  while (pos + kWord.size() <= text.size()) {
    bool match = true;
    for (std::size_t i = 0; i < kWord.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(text[pos + i])) != kWord[i]) {
        match = false;
        break;
      }
    }
    if (!match) {
      ++pos;
      continue;
    }
    std::size_t start = pos + kWord.size();
    std::size_t end = start;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) &&
           text[end] != '"' && text[end] != '\'') {
      ++end;
    }
    if (end > start && text.compare(start, end - start, kRedacted) != 0) {
      text.replace(start, end - start, kRedacted);
    }
    pos = start + kRedacted.size();
  }
  return text;
}

std::vector<std::string> split_name(std::string_view key) {
  std::vector<std::string> words;
  std::string word;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    bool boundary = c == '_' || c == '-' || c == '.' || c == ' ';
    bool camel = i > 0 && std::isupper(static_cast<unsigned char>(c)) &&
                 std::islower(static_cast<unsigned char>(key[i - 1]));
    if (boundary || camel) {
      if (!word.empty()) words.push_back(word);
      word.clear();
      if (boundary) continue;
    }
    word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

std::string format_time_human(std::string iso) {
  // 2026-11-22T10:00:00.123Z -> 10:00:00.123
  return iso.size() >= 23 ? iso.substr(11, 12) : iso;
}

}  // namespace

std::optional<Level> parse_level(std::string_view text) {
  if (text == "debug") return Level::debug;
  if (text == "info") return Level::info;
  if (text == "warn" || text == "warning") return Level::warn;
  if (text == "error") return Level::error;
  return std::nullopt;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "info";
}

void configure(const Options& options) {
  state().min_level = static_cast<int>(options.min_level);
  state().human = options.human;
  state().repeat_burst = options.repeat_burst;
  state().repeat_window_ms = options.repeat_window.count();
  std::lock_guard lock(state().repeat_mutex);
  state().repeats.clear();
}

Options current_options() {
  return Options{state().human.load(), static_cast<Level>(state().min_level.load()),
                 state().repeat_burst.load(),
                 std::chrono::milliseconds(state().repeat_window_ms.load())};
}

namespace {

// Whether a warning or error may be written now; *suppressed is how many of
// its kind were held back since the last one written.
bool may_write(const std::string& component, std::string_view msg, std::int64_t* suppressed) {
  auto& st = state();
  const auto now = std::chrono::steady_clock::now();
  const auto window = std::chrono::milliseconds(st.repeat_window_ms.load());
  std::string key = component;
  key += '\x1f';
  key.append(msg.data(), msg.size());
  std::lock_guard lock(st.repeat_mutex);
  auto it = st.repeats.find(key);
  if (it == st.repeats.end()) {
    if (st.repeats.size() >= kMaxRepeatKeys) {
      for (auto i = st.repeats.begin(); i != st.repeats.end();) {
        i = now - i->second.window_start >= window && i->second.suppressed == 0
                ? st.repeats.erase(i)
                : std::next(i);
      }
      if (st.repeats.size() >= kMaxRepeatKeys) return true;  // too many kinds to follow: write it
    }
    it = st.repeats.emplace(std::move(key), State::Repeat{now, 0, 0}).first;
  }
  auto& r = it->second;
  if (now - r.window_start >= window) {
    r.window_start = now;
    r.written = 0;
  }
  if (r.written >= st.repeat_burst.load()) {
    ++r.suppressed;
    return false;
  }
  ++r.written;
  *suppressed = r.suppressed;
  r.suppressed = 0;
  return true;
}

}  // namespace

void set_sink(std::function<void(std::string_view)> sink) {
  std::lock_guard lock(state().write_mutex);
  state().sink = std::move(sink);
}

void add_secret(std::string_view value) {
  if (value.size() < 4) return;
  std::unique_lock lock(state().secrets_mutex);
  auto& secrets = state().secrets;
  if (std::find(secrets.begin(), secrets.end(), value) != secrets.end()) return;
  secrets.emplace_back(value);
  // Longest first, so that a secret containing another is replaced whole.
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

void add_transient_secret(std::string_view value) {
  constexpr std::size_t kMaxTransient = 32;
  if (value.size() < 4) return;
  std::unique_lock lock(state().secrets_mutex);
  auto& t = state().transient;
  if (std::find(t.begin(), t.end(), value) != t.end()) return;
  t.emplace_back(value);
  while (t.size() > kMaxTransient) t.pop_front();
}

std::size_t secret_count() {
  std::shared_lock lock(state().secrets_mutex);
  return state().secrets.size() + state().transient.size();
}

void clear_secrets() {
  std::unique_lock lock(state().secrets_mutex);
  state().secrets.clear();
  state().transient.clear();
}

std::string redact(std::string_view text) {
  std::string out(text);
  {
    std::shared_lock lock(state().secrets_mutex);
    auto hide = [&out](const std::string& secret) {
      std::size_t pos = 0;
      while ((pos = out.find(secret, pos)) != std::string::npos) {
        out.replace(pos, secret.size(), kRedacted);
        pos += kRedacted.size();
      }
    };
    for (const auto& secret : state().secrets) hide(secret);
    for (const auto& secret : state().transient) hide(secret);
  }
  return scrub_url_credentials(scrub_bearer(scrub_jwts(std::move(out))));
}

bool is_secret_field_name(std::string_view key) {
  static const char* const kSecretWords[] = {
      "jwt",           "token",  "secret", "password",   "passwd",      "pin",       "bootstrap",
      "authorization", "cookie", "value",  "credential", "credentials", "passphrase"};
  for (const auto& word : split_name(key)) {
    for (const char* secret : kSecretWords) {
      if (word == secret) return true;
    }
  }
  return false;
}

bool Logger::enabled(Level level) const {
  return static_cast<int>(level) >= state().min_level.load(std::memory_order_relaxed);
}

void Logger::write(Level level, std::string_view msg, Fields fields) const {
  if (!enabled(level)) return;
  std::int64_t suppressed = 0;
  if (level >= Level::warn && !may_write(component_, msg, &suppressed)) return;
  const std::string ts = format_rfc3339_millis(std::chrono::system_clock::now());
  std::string line;
  if (state().human) {
    std::string lvl(level_name(level));
    std::transform(lvl.begin(), lvl.end(), lvl.begin(), ::toupper);
    lvl.resize(5, ' ');
    line = format_time_human(ts) + " " + lvl + " [" + component_ + "] " + redact(msg);
    for (const auto& f : fields) {
      line += " " + f.key + "=";
      if (is_secret_field_name(f.key)) {
        line += kRedacted;
        continue;
      }
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, std::string>) {
              std::string r = redact(v);
              bool quote = r.empty() || r.find_first_of(" \t\"=") != std::string::npos;
              line += quote ? nlohmann::json(r).dump(-1, ' ', false,
                                                     nlohmann::json::error_handler_t::replace)
                            : r;
            } else if constexpr (std::is_same_v<V, bool>) {
              line += v ? "true" : "false";
            } else {
              line += nlohmann::json(v).dump();
            }
          },
          f.value);
    }
    if (suppressed > 0) line += " suppressed=" + std::to_string(suppressed);
    // Control characters from outside input must not forge extra log lines.
    for (char& c : line) {
      if (c == '\n' || c == '\r') c = ' ';
    }
  } else {
    nlohmann::ordered_json j;
    j["ts"] = ts;
    j["level"] = level_name(level);
    j["component"] = component_;
    j["msg"] = redact(msg);
    for (const auto& f : fields) {
      if (f.key == "ts" || f.key == "level" || f.key == "component" || f.key == "msg") continue;
      if (is_secret_field_name(f.key)) {
        j[f.key] = kRedacted;
        continue;
      }
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, std::string>) {
              j[f.key] = redact(v);
            } else {
              j[f.key] = v;
            }
          },
          f.value);
    }
    if (suppressed > 0) j["suppressed"] = suppressed;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  std::lock_guard lock(state().write_mutex);
  if (state().sink) {
    state().sink(line);
    return;
  }
  line.push_back('\n');
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr is gone; nothing better to do
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace secbox::log
