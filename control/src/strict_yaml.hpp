#pragma once
// A YAML document read strictly, once, into plain typed values: the only
// reading of a compose file that the policy checks and the canonical writer
// writes from. What two YAML readers could take differently is refused with
// its line instead of guessed: a key given twice, an anchor, alias or merge
// key, a tag, more than one document, a key that is not text, and a plain
// scalar that YAML 1.1 (PyYAML, which podman-compose reads with) would turn
// into something other than text, a decimal number, true/false or null
// (`yes`, `on`, `0644`, `0x1F`, `1:30`, `2026-12-07`, `.inf`). Value types;
// any thread.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace secbox::control::yaml {

struct Node {
  enum class Kind { null, boolean, integer, number, string, sequence, mapping };
  Kind kind = Kind::null;
  // A scalar's canonical text: "true"/"false", decimal digits (no '+'), the
  // number as written, or the string itself.
  std::string text;
  int line = 0;                                       // 1-based, where the node starts
  std::vector<Node> items;                            // a sequence
  std::vector<std::pair<std::string, Node>> entries;  // a mapping, in order; keys unique

  bool is_scalar() const { return kind != Kind::sequence && kind != Kind::mapping; }
  bool is_map() const { return kind == Kind::mapping; }
  bool is_seq() const { return kind == Kind::sequence; }
  bool is_string() const { return kind == Kind::string; }
  // The value of a mapping's key, or nullptr.
  const Node* find(std::string_view key) const;
};

struct Limits {
  std::size_t max_bytes = 1024 * 1024;
  std::size_t max_nodes = 100000;
  int max_depth = 32;
};

// One document, strictly. Errc::invalid with "line N: …" for anything above.
Result<Node> parse(std::string_view text, const Limits& limits = {});

// The document as text that YAML 1.1 and 1.2 readers both take exactly as
// `node` (flow style, every string double-quoted with ASCII escapes, numbers
// and booleans bare); parse(write(n)) gives n back, lines aside.
std::string write(const Node& node);

}  // namespace secbox::control::yaml
