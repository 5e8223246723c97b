#include "envfile/env_file.hpp"

#include <algorithm>

namespace secbox::envfile {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_newline(char c) { return c == '\n' || c == '\r'; }  // systemd ends a line at either
bool is_key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9'); }

// Values that need no quoting in any env-file dialect (systemd, compose, dotenv).
bool is_bare_safe(std::string_view v) {
  if (v.empty()) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("_./:@%+,=-").find(c) != std::string_view::npos;
  });
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : s_(text), source_(source) {}

  Result<EnvFile> run() {
    if (auto nul = s_.find('\0'); nul != std::string_view::npos) {
      return fail(line_at(nul), "contains a NUL byte");
    }
    EnvFile env;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (is_space(c) || c == '\r') {
        ++pos_;
      } else if (c == '\n') {
        ++pos_;
        ++line_;
      } else if (c == '#' || c == ';') {
        skip_comment();
      } else {
        auto entry = assignment();
        if (!entry) return entry.error();
        env.set(entry.value().key, entry.value().value, entry.value().line);
      }
    }
    return env;
  }

 private:
  Error fail(int line, const std::string& what) const {
    return Error{Errc::invalid,
                 std::string(source_) + " line " + std::to_string(line) + ": " + what};
  }

  int line_at(std::size_t offset) const {
    return 1 + static_cast<int>(std::count(s_.begin(), s_.begin() + offset, '\n'));
  }

  void newline_seen(char c) {
    if (c == '\n') ++line_;
  }

  // As systemd: a backslash escapes the next character, even a newline.
  void skip_comment() {
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '\\' && pos_ < s_.size()) {
        newline_seen(s_[pos_++]);
      } else if (is_newline(c)) {
        newline_seen(c);
        return;
      }
    }
  }

  Result<Entry> assignment() {
    const int line = line_;
    if (s_.compare(pos_, 6, "export") == 0 && pos_ + 6 < s_.size() && is_space(s_[pos_ + 6])) {
      pos_ += 6;
      while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
    }
    const std::size_t key_start = pos_;
    while (pos_ < s_.size() && !is_newline(s_[pos_]) && s_[pos_] != '=' && !is_space(s_[pos_])) {
      ++pos_;
    }
    std::string key(s_.substr(key_start, pos_ - key_start));
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
    if (pos_ >= s_.size() || s_[pos_] != '=') {
      std::string shown = key.size() > 40 ? key.substr(0, 40) + "…" : key;
      if (!is_valid_utf8(shown)) shown = "(not UTF-8)";
      return fail(line, "expected KEY=VALUE, found no '=' after \"" + shown + "\"");
    }
    ++pos_;  // '='
    if (key.empty()) return fail(line, "a line starts with '=' and has no key");
    if (!is_key_start(key[0]) || !std::all_of(key.begin(), key.end(), is_key_char)) {
      std::string shown = is_valid_utf8(key) ? key : "(not UTF-8)";
      return fail(line, "\"" + shown + "\" is not a valid variable name (letters, digits and _)");
    }
    auto value = value_text(key, line);
    if (!value) return value.error();
    if (!is_valid_utf8(value.value())) return fail(line, "the value of " + key + " is not UTF-8");
    return Entry{std::move(key), std::move(value).value(), line};
  }

  Result<std::string> value_text(const std::string& key, int key_line) {
    std::string out;
    enum class State { pre, bare } state = State::pre;
    std::size_t trailing_ws = std::string::npos;  // where unescaped trailing blanks start
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (is_newline(c)) {
        ++pos_;
        newline_seen(c);
        break;
      }
      if (state == State::pre && (is_space(c))) {
        ++pos_;
        continue;
      }
      if (state == State::pre && c == '\'') {
        const int open_line = line_;
        ++pos_;
        std::size_t close = pos_;
        while (close < s_.size() && s_[close] != '\'' && !is_newline(s_[close])) ++close;
        if (close >= s_.size() || s_[close] != '\'') {
          return fail(open_line, "the single quote opened in the value of " + key +
                                     " is not closed on the same line");
        }
        out.append(s_.substr(pos_, close - pos_));
        pos_ = close + 1;
        continue;
      }
      if (state == State::pre && c == '"') {
        const int open_line = line_;
        ++pos_;
        bool closed = false;
        while (pos_ < s_.size()) {
          char q = s_[pos_++];
          if (q == '"') {
            closed = true;
            break;
          }
          if (q == '\\') {
            if (pos_ >= s_.size()) break;
            char e = s_[pos_++];
            if (e == '\n') {
              ++line_;  // continuation
            } else if (e == '"' || e == '\\' || e == '`' || e == '$') {
              out.push_back(e);
            } else {
              out.push_back('\\');
              out.push_back(e);
            }
            continue;
          }
          if (is_newline(q)) break;
          out.push_back(q);
        }
        if (!closed) {
          return fail(open_line, "the double quote opened in the value of " + key +
                                     " is not closed on the same line");
        }
        continue;
      }
      // Unquoted text (quotes inside it are literal, as in systemd).
      state = State::bare;
      ++pos_;
      if (c == '\\') {
        trailing_ws = std::string::npos;
        if (pos_ < s_.size()) {
          char e = s_[pos_++];
          if (is_newline(e)) {
            newline_seen(e);  // continuation: the newline is eaten
          } else {
            out.push_back(e);
          }
        }
        continue;
      }
      if (is_space(c)) {
        if (trailing_ws == std::string::npos) trailing_ws = out.size();
      } else {
        trailing_ws = std::string::npos;
      }
      out.push_back(c);
    }
    if (trailing_ws != std::string::npos) out.resize(trailing_ws);
    (void)key_line;
    return out;
  }

  std::string_view s_;
  std::string_view source_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

std::optional<std::string> EnvFile::get(std::string_view key) const {
  auto it = index_.find(std::string(key));
  if (it == index_.end()) return std::nullopt;
  return entries_[it->second].value;
}

bool EnvFile::has_nonempty(std::string_view key) const {
  auto v = get(key);
  return v && !v->empty();
}

void EnvFile::set(std::string_view key, std::string_view value, int line) {
  auto [it, inserted] = index_.try_emplace(std::string(key), entries_.size());
  if (inserted) {
    entries_.push_back(Entry{std::string(key), std::string(value), line});
  } else {
    entries_[it->second].value = std::string(value);
    entries_[it->second].line = line;
  }
}

bool EnvFile::unset(std::string_view key) {
  auto it = index_.find(std::string(key));
  if (it == index_.end()) return false;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (std::size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].key, i);
  return true;
}

bool operator==(const EnvFile& a, const EnvFile& b) {
  if (a.entries_.size() != b.entries_.size()) return false;
  for (std::size_t i = 0; i < a.entries_.size(); ++i) {
    if (a.entries_[i].key != b.entries_[i].key || a.entries_[i].value != b.entries_[i].value) {
      return false;
    }
  }
  return true;
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

Result<EnvFile> parse(std::string_view text, std::string_view source) {
  return Parser(text, source).run();
}

Result<void> validate_key(std::string_view key) {
  bool valid = !key.empty() && ((key[0] >= 'A' && key[0] <= 'Z') || key[0] == '_') &&
               std::all_of(key.begin(), key.end(), [](char c) {
                 return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
               });
  if (!valid) {
    std::string shown = key.size() > 64 ? std::string(key.substr(0, 64)) + "…" : std::string(key);
    if (!is_valid_utf8(shown)) shown = "(not UTF-8)";
    return Error{Errc::invalid,
                 "\"" + shown + "\" is not a valid key: use capital letters, digits and _"};
  }
  return ok();
}

Result<void> validate_value(std::string_view key, std::string_view value) {
  if (value.find('\n') != std::string_view::npos || value.find('\r') != std::string_view::npos) {
    return Error{Errc::invalid, "the value of " + std::string(key) +
                                    " contains a line break; env values must be one line"};
  }
  if (value.find('\0') != std::string_view::npos) {
    return Error{Errc::invalid, "the value of " + std::string(key) + " contains a NUL byte"};
  }
  if (!is_valid_utf8(value)) {
    return Error{Errc::invalid, "the value of " + std::string(key) + " is not valid UTF-8"};
  }
  return ok();
}

Result<std::string> serialize(const EnvFile& env) {
  std::string out;
  for (const auto& e : env.entries()) {
    if (auto r = validate_key(e.key); !r) return r.error();
    if (auto r = validate_value(e.key, e.value); !r) return r.error();
    out += e.key;
    out += '=';
    if (e.value.empty() || is_bare_safe(e.value)) {
      out += e.value;
    } else if (e.value.find('\'') == std::string::npos) {
      // Single quotes are literal in systemd, compose and dotenv alike.
      out += '\'' + e.value + '\'';
    } else {
      out += '"';
      for (char c : e.value) {
        if (c == '"' || c == '\\' || c == '`' || c == '$') out += '\\';
        out += c;
      }
      out += '"';
    }
    out += '\n';
  }
  return out;
}

Result<EnvFile> load(const std::string& path) {
  auto text = read_file(path, kMaxEnvFileBytes);
  if (!text) return text.error();
  auto slash = path.rfind('/');
  return parse(text.value(), slash == std::string::npos ? path : path.substr(slash + 1));
}

Result<void> save(const std::string& path, const EnvFile& env, std::optional<FileOwner> owner) {
  auto text = serialize(env);
  if (!text) return text.error();
  return write_file_atomically(path, text.value(), AtomicWriteOptions{0600, owner});
}

}  // namespace secbox::envfile
