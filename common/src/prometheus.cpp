#include "common/prometheus.hpp"

#include <cmath>
#include <cstdio>

namespace secbox {
namespace {

void append_escaped(std::string& out, std::string_view value, bool quote) {
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) return void(out += "NaN");
  if (std::isinf(v)) return void(out += v > 0 ? "+Inf" : "-Inf");
  char num[64];
  std::snprintf(num, sizeof num, "%.17g", v);
  out += num;
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view help, std::string_view type,
                            const std::vector<Sample>& samples) {
  out_.append("# HELP ").append(name).push_back(' ');
  append_escaped(out_, help, false);
  out_.append("\n# TYPE ").append(name).push_back(' ');
  out_.append(type).push_back('\n');
  for (const auto& [labels, value] : samples) {
    out_.append(name).append(labels).push_back(' ');
    append_number(out_, value);
    out_.push_back('\n');
  }
}

std::string PrometheusText::labels(
    const std::vector<std::pair<std::string_view, std::string_view>>& pairs) {
  if (pairs.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (i) out.push_back(',');
    out.append(pairs[i].first).append("=\"");
    append_escaped(out, pairs[i].second, true);
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace secbox
