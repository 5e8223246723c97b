#include "strict_yaml.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include "envfile/env_file.hpp"

namespace secbox::control::yaml {
namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }
bool digit_(char c) { return digit(c) || c == '_'; }
bool all(std::string_view s, bool (*pred)(char)) { return std::all_of(s.begin(), s.end(), pred); }

std::string_view unsigned_part(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return s;
}

// (:[0-5]?[0-9])+ as the whole of t.
bool sexagesimal_tail(std::string_view t) {
  if (t.empty()) return false;
  while (!t.empty()) {
    if (t[0] != ':') return false;
    t.remove_prefix(1);
    if (t.size() >= 2 && t[0] >= '0' && t[0] <= '5' && digit(t[1]) &&
        (t.size() == 2 || t[2] == ':')) {
      t.remove_prefix(2);
    } else if (!t.empty() && digit(t[0]) && (t.size() == 1 || t[1] == ':')) {
      t.remove_prefix(1);
    } else {
      return false;
    }
  }
  return true;
}

// ([eE][-+][0-9]+)? as the whole of t.
bool exponent_tail(std::string_view t) {
  if (t.empty()) return true;
  return t.size() >= 3 && (t[0] == 'e' || t[0] == 'E') && (t[1] == '+' || t[1] == '-') &&
         all(t.substr(2), digit);
}

// PyYAML's (YAML 1.1) int resolver.
bool yaml11_int(std::string_view s) {
  auto r = unsigned_part(s);
  if (r.size() > 2 && r[0] == '0' && r[1] == 'b') {
    return all(r.substr(2), [](char c) { return c == '0' || c == '1' || c == '_'; });
  }
  if (r.size() > 2 && r[0] == '0' && r[1] == 'x') {
    return all(r.substr(2), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == '_';
    });
  }
  if (r.size() > 1 && r[0] == '0')
    return all(r.substr(1), [](char c) { return (c >= '0' && c <= '7') || c == '_'; });
  if (r == "0") return true;
  if (r.empty() || r[0] < '1' || r[0] > '9') return false;
  std::size_t j = 1;
  while (j < r.size() && digit_(r[j])) ++j;
  return j == r.size() || sexagesimal_tail(r.substr(j));
}

// PyYAML's float resolver (a little wider: a sign before ".5").
bool yaml11_float(std::string_view s) {
  auto r = unsigned_part(s);
  for (const char* special : {".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"}) {
    if (r == special) return true;
  }
  std::size_t j = 0;
  while (j < r.size() && digit_(r[j])) ++j;
  if (j < r.size() && r[j] == '.') {
    if (j > 0 && !digit(r[0])) return false;
    std::size_t k = j + 1;
    while (k < r.size() && digit_(r[k])) ++k;
    if (j == 0 && k == j + 1) return false;
    return exponent_tail(r.substr(k));
  }
  if (j == 0 || !digit(r[0])) return false;
  const auto dot = r.find('.', j);
  if (dot == std::string_view::npos || !sexagesimal_tail(r.substr(j, dot - j))) return false;
  return all(r.substr(dot + 1), digit_);
}

// The start of YAML 1.1's timestamp: yyyy-m-d.
bool yaml11_timestamp(std::string_view s) {
  if (s.size() < 8 || !all(s.substr(0, 4), digit) || s[4] != '-') return false;
  std::size_t i = 5;
  std::size_t n = 0;
  while (i < s.size() && digit(s[i]) && n < 2) ++i, ++n;
  if (n == 0 || i >= s.size() || s[i] != '-') return false;
  ++i;
  return i < s.size() && digit(s[i]);
}

bool plain_decimal(std::string_view s) {
  auto r = unsigned_part(s);
  return !r.empty() && r.size() <= 18 && all(r, digit) && (r[0] != '0' || r.size() == 1);
}

bool plain_number(std::string_view s) {
  auto r = unsigned_part(s);
  std::size_t j = 0;
  while (j < r.size() && digit(r[j])) ++j;
  if (j == 0 || j >= r.size() || r[j] != '.' || r.size() > 40) return false;
  std::size_t k = j + 1;
  while (k < r.size() && digit(r[k])) ++k;
  return exponent_tail(r.substr(k));
}

struct Refused {
  int line;
  std::string what;
};

// Decodes one UTF-8 sequence at text[i]; -1 when it is not valid.
long next_code_point(const std::string& text, std::size_t& i) {
  const auto b = static_cast<unsigned char>(text[i]);
  int extra = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : -1;
  if (extra < 0 || i + extra >= text.size() + (extra == 0 ? 1 : 0)) return -1;
  long cp = extra == 0 ? b : b & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    const auto c = static_cast<unsigned char>(text[i + k]);
    if ((c & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (c & 0x3F);
  }
  static const long kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i += extra + 1;
  return cp;
}

class Builder final : public YAML::EventHandler {
 public:
  explicit Builder(const Limits& limits) : limits_(limits) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1)
      throw Refused{mark.line + 1, "a second YAML document (---): one file, one document"};
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    no_anchor(mark, anchor);
    Node n;
    n.kind = Node::Kind::null;
    n.line = mark.line + 1;
    add(std::move(n));
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    throw Refused{mark.line + 1, "an alias (*name): write the value out where it is used"};
  }
  void OnAnchor(const YAML::Mark& mark, const std::string& name) override {
    throw Refused{mark.line + 1,
                  "an anchor (&" + name.substr(0, 40) + "): write the value out where it is used"};
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    no_anchor(mark, anchor);
    const int line = mark.line + 1;
    if (tag != "?" && tag != "!")
      throw Refused{line, "a YAML tag (" + tag.substr(0, 40) + "): tags are not allowed"};
    Node n;
    n.line = line;
    n.text = value;
    if (tag == "!") {
      n.kind = Node::Kind::string;
    } else {
      resolve_plain(n);
    }
    if (n.kind == Node::Kind::string) check_text(line, n.text);
    add(std::move(n));
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, tag, anchor, Node::Kind::sequence);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, tag, anchor, Node::Kind::mapping);
  }
  void OnMapEnd() override { close(); }

  bool has_root() const { return have_root_; }
  Node take_root() { return std::move(root_); }

 private:
  struct Frame {
    Node node;
    bool have_key = false;
    std::string key;
    std::set<std::string, std::less<>> keys;
  };

  static void no_anchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != 0)
      throw Refused{mark.line + 1, "an anchor (&): write the value out where it is used"};
  }

  static void resolve_plain(Node& n) {
    const std::string& v = n.text;
    if (v == "true" || v == "True" || v == "TRUE" || v == "false" || v == "False" || v == "FALSE") {
      n.kind = Node::Kind::boolean;
      n.text = (v[0] == 't' || v[0] == 'T') ? "true" : "false";
      return;
    }
    for (const char* word :
         {"yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"}) {
      if (v == word) {
        throw Refused{n.line,
                      "\"" + v +
                          "\" unquoted is a boolean to one YAML reader and text to another: write "
                          "true/false, or quote it"};
      }
    }
    if (v == "<<")
      throw Refused{n.line, "a merge key (<<): write the values out where they are used"};
    if (v == "=")
      throw Refused{n.line, "\"=\" unquoted has a meaning of its own in YAML 1.1: quote it"};
    if (plain_decimal(v)) {
      n.kind = Node::Kind::integer;
      n.text = v[0] == '+' ? v.substr(1) : v;
      if (n.text == "-0") n.text = "0";
      return;
    }
    if (plain_number(v)) {
      n.kind = Node::Kind::number;
      n.text = v[0] == '+' ? v.substr(1) : v;
      return;
    }
    if (yaml11_int(v) || yaml11_float(v) || yaml11_timestamp(v)) {
      throw Refused{
          n.line,
          "\"" + v.substr(0, 40) +
              "\" unquoted is read differently by YAML 1.1 and 1.2 (an octal, "
              "hexadecimal, sexagesimal or special number, or a date): quote it, or write a plain "
              "decimal number"};
    }
    n.kind = Node::Kind::string;
  }

  // Text may hold tabs and line breaks, no other control character, and
  // only valid UTF-8 (an escape can spell a lone surrogate).
  static void check_text(int line, const std::string& text) {
    for (std::size_t i = 0; i < text.size();) {
      const long cp = next_code_point(text, i);
      if (cp < 0) throw Refused{line, "text that is not valid UTF-8"};
      if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
        throw Refused{line, "a control character in text"};
      }
    }
  }

  void open(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
            Node::Kind kind) {
    no_anchor(mark, anchor);
    if (tag != "?" && !tag.empty())
      throw Refused{mark.line + 1, "a YAML tag (" + tag.substr(0, 40) + ")"};
    if (!stack_.empty() && stack_.back().node.is_map() && !stack_.back().have_key) {
      throw Refused{mark.line + 1, "a key that is a list or a mapping: keys are text"};
    }
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      throw Refused{mark.line + 1,
                    "nested deeper than " + std::to_string(limits_.max_depth) + " levels"};
    }
    count(mark.line + 1);
    Frame f;
    f.node.kind = kind;
    f.node.line = mark.line + 1;
    stack_.push_back(std::move(f));
  }

  void close() {
    Node done = std::move(stack_.back().node);
    stack_.pop_back();
    attach(std::move(done));
  }

  void add(Node n) {
    count(n.line);
    attach(std::move(n));
  }

  void count(int line) {
    if (++nodes_ > limits_.max_nodes) {
      throw Refused{line, "more than " + std::to_string(limits_.max_nodes) + " values in one file"};
    }
  }

  void attach(Node n) {
    if (stack_.empty()) {
      root_ = std::move(n);
      have_root_ = true;
      return;
    }
    Frame& top = stack_.back();
    if (top.node.is_seq()) {
      top.node.items.push_back(std::move(n));
      return;
    }
    if (!top.have_key) {
      if (n.kind != Node::Kind::string) {
        throw Refused{n.line, "a key that is not text (" +
                                  (n.text.empty() ? std::string("null") : n.text.substr(0, 40)) +
                                  "): quote it"};
      }
      // YAML limits an implicit key to 1024 characters: written escaped
      // (at most 3 characters a byte), a longer key would not read back.
      if (n.text.size() > 256) throw Refused{n.line, "a key longer than 256 bytes"};
      if (!top.keys.insert(n.text).second) {
        throw Refused{n.line,
                      "the key \"" + n.text.substr(0, 60) + "\" is given twice in one mapping"};
      }
      top.key = std::move(n.text);
      top.have_key = true;
      return;
    }
    top.node.entries.emplace_back(std::move(top.key), std::move(n));
    top.have_key = false;
  }

  const Limits& limits_;
  std::vector<Frame> stack_;
  Node root_;
  bool have_root_ = false;
  int documents_ = 0;
  std::size_t nodes_ = 0;
};

void write_string(std::string& out, const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n";
      ++i;
    } else if (c == '\t') {
      out += "\\t";
      ++i;
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
    } else {
      long cp = next_code_point(s, i);
      if (cp < 0) {  // parse() lets none through; a hand-made node may
        cp = 0xFFFD;
        ++i;
      }
      const int digits = cp > 0xFFFF ? 8 : 4;
      out += digits == 8 ? "\\U" : "\\u";
      for (int k = digits - 1; k >= 0; --k) out += kHex[(cp >> (4 * k)) & 0xF];
    }
  }
  out += '"';
}

void write_node(std::string& out, const Node& n, int indent) {
  const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
  switch (n.kind) {
    case Node::Kind::null:
      out += "null";
      return;
    case Node::Kind::boolean:
    case Node::Kind::integer:
    case Node::Kind::number:
      out += n.text;
      return;
    case Node::Kind::string:
      write_string(out, n.text);
      return;
    case Node::Kind::sequence:
      if (n.items.empty()) {
        out += "[]";
        return;
      }
      out += "[\n";
      for (std::size_t i = 0; i < n.items.size(); ++i) {
        out += pad;
        write_node(out, n.items[i], indent + 2);
        out += i + 1 < n.items.size() ? ",\n" : "\n";
      }
      out += std::string(static_cast<std::size_t>(indent), ' ') + "]";
      return;
    case Node::Kind::mapping:
      if (n.entries.empty()) {
        out += "{}";
        return;
      }
      out += "{\n";
      for (std::size_t i = 0; i < n.entries.size(); ++i) {
        out += pad;
        write_string(out, n.entries[i].first);
        out += ": ";
        write_node(out, n.entries[i].second, indent + 2);
        out += i + 1 < n.entries.size() ? ",\n" : "\n";
      }
      out += std::string(static_cast<std::size_t>(indent), ' ') + "}";
      return;
  }
}

}  // namespace

const Node* Node::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

Result<Node> parse(std::string_view text, const Limits& limits) {
  constexpr Errc code = Errc::invalid;
  if (text.size() > limits.max_bytes) {
    return Error{Errc::too_large,
                 "the file is larger than " + std::to_string(limits.max_bytes / 1024) + " KiB"};
  }
  if (!envfile::is_valid_utf8(text) || text.find('\0') != std::string_view::npos) {
    return Error{code, "the file is not valid UTF-8 text"};
  }
  std::istringstream in{std::string(text)};
  Builder builder(limits);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const Refused& r) {
    return Error{code, "line " + std::to_string(r.line) + ": " + r.what};
  } catch (const YAML::Exception& e) {
    return Error{
        code, "the file is not valid YAML: line " + std::to_string(e.mark.line + 1) + ": " + e.msg};
  }
  if (!builder.has_root()) return Error{code, "the file holds no YAML document"};
  return builder.take_root();
}

std::string write(const Node& node) {
  std::string out;
  write_node(out, node, 0);
  out += '\n';
  return out;
}

}  // namespace secbox::control::yaml
