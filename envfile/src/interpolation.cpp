// The compose interpolation check (cloud-protocol §7.3 step 4).
//
// Variables resolve from the env file only. Defaults are taken as they are
// written and not interpolated again: podman-compose 1.0.3 passes
// `${A:-${B:-x}}` through literally, which is how the outage happened, so a
// default (or alternative) that still holds `$` is a failure.
#include <algorithm>

#include "envfile/guards.hpp"

namespace secbox::envfile {
namespace {

bool name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

class Checker {
 public:
  Checker(std::string_view text, const EnvFile& env) : s_(text), env_(env) {}

  std::vector<UnresolvedReference> run() {
    bool line_start = true;
    bool comment = false;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '\n') {
        ++line_;
        ++i_;
        line_start = true;
        comment = false;
        continue;
      }
      if (line_start && (c == ' ' || c == '\t')) {
        ++i_;
        continue;
      }
      if (line_start && c == '#') comment = true;  // YAML comments are not interpolated
      line_start = false;
      if (comment || c != '$') {
        ++i_;
        continue;
      }
      reference();
    }
    return std::move(problems_);
  }

 private:
  void add(std::string variable, std::string reason) {
    problems_.push_back(UnresolvedReference{std::move(variable), line_, std::move(reason)});
  }

  static std::string shown(std::string_view text) {
    std::string s(text.substr(0, 80));
    if (text.size() > 80) s += "…";
    if (!is_valid_utf8(s)) s = "(not UTF-8)";
    return s;
  }

  // At a '$'.
  void reference() {
    const std::size_t start = i_;
    ++i_;
    if (i_ >= s_.size()) {
      add("", "a lone '$' at the end (write $$ for a literal dollar)");
      return;
    }
    char c = s_[i_];
    if (c == '$') {
      ++i_;  // $$ is a literal $
      return;
    }
    if (name_start(c)) {
      std::size_t n = i_;
      while (n < s_.size() && name_char(s_[n])) ++n;
      std::string name(s_.substr(i_, n - i_));
      i_ = n;
      note(name);
      require_set(name, "$" + name);
      return;
    }
    if (c != '{') {
      add("",
          "a lone '$' before '" + shown(s_.substr(i_, 1)) + "' (write $$ for a literal dollar)");
      return;
    }
    ++i_;  // '{'
    std::size_t n = i_;
    while (n < s_.size() && name_char(s_[n])) ++n;
    std::string name(s_.substr(i_, n - i_));
    // Find the matching '}', counting nested ${ … }.
    std::size_t end = n;
    int depth = 1;
    while (end < s_.size()) {
      if (s_[end] == '\n') break;
      if (s_[end] == '$' && end + 1 < s_.size() && s_[end + 1] == '{') {
        ++depth;
        end += 2;
        continue;
      }
      if (s_[end] == '}' && --depth == 0) break;
      ++end;
    }
    if (end >= s_.size() || s_[end] != '}') {
      add(name, "\"" + shown(s_.substr(start, end - start)) + "\" has no closing '}'");
      i_ = end;
      return;
    }
    const std::string whole(s_.substr(start, end + 1 - start));
    i_ = end + 1;
    if (name.empty() || !name_start(name[0])) {
      add("", "\"" + shown(whole) + "\" does not start with a variable name");
      return;
    }
    note(name);
    std::string_view rest = s_.substr(n, end - n);  // operator and word
    if (rest.empty() || rest.substr(0, 2) == ":?" || rest[0] == '?') {
      require_set(name, whole);
      return;
    }
    std::string op;
    if (rest.substr(0, 2) == ":-" || rest.substr(0, 2) == ":+") {
      op = std::string(rest.substr(0, 2));
    } else if (rest[0] == '-' || rest[0] == '+') {
      op = std::string(rest.substr(0, 1));
    } else {
      add(name, "\"" + shown(whole) + "\" is not a valid substitution");
      return;
    }
    std::string_view word = rest.substr(op.size());
    auto value = env_.get(name);
    const bool set_nonempty = value && !value->empty();
    const bool present = value.has_value();
    const bool use_value = (op == ":-") ? set_nonempty : (op == "-") ? present : false;
    const bool use_word = (op == ":-")   ? !set_nonempty
                          : (op == "-")  ? !present
                          : (op == ":+") ? set_nonempty
                                         : present;
    if (use_value && value->find('$') != std::string::npos) {
      add(name,
          "\"" + shown(whole) + "\" resolves to the value of " + name + ", which still holds '$'");
    } else if (use_word && word.find('$') != std::string_view::npos) {
      add(name, "\"" + shown(whole) + "\" resolves to its default \"" + shown(word) +
                    "\", which still holds '$' (defaults are not interpolated again)");
    }
  }

  void note(const std::string& name) {
    if (std::find(names_.begin(), names_.end(), name) == names_.end()) names_.push_back(name);
  }

  void require_set(const std::string& name, const std::string& whole) {
    auto value = env_.get(name);
    if (!value) {
      add(name, "\"" + shown(whole) + "\": " + name + " is not in the env file");
    } else if (value->empty()) {
      add(name, "\"" + shown(whole) + "\": " + name + " is empty in the env file");
    } else if (value->find("${") != std::string::npos) {
      add(name, "\"" + shown(whole) + "\": the value of " + name +
                    " holds a literal \"${\" that would reach the container");
    }
  }

  std::string_view s_;
  const EnvFile& env_;
  std::size_t i_ = 0;
  int line_ = 1;
  std::vector<UnresolvedReference> problems_;

 public:
  std::vector<std::string> names_;  // every variable referenced, in order, once
};

}  // namespace

std::vector<UnresolvedReference> find_unresolved(std::string_view compose_text,
                                                 const EnvFile& env) {
  return Checker(compose_text, env).run();
}

std::vector<std::string> referenced_variables(std::string_view compose_text) {
  static const EnvFile kNone;
  Checker checker(compose_text, kNone);
  checker.run();
  return std::move(checker.names_);
}

}  // namespace secbox::envfile
