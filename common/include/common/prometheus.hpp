#pragma once
// Prometheus text exposition (format 0.0.4), written one family at a time:
// `# HELP`, `# TYPE`, then its samples. Label values are escaped as the format
// asks (backslash, double quote, newline), so a camera or entity name cannot
// break a line. The one writer of the box's /metrics.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace secbox {

class PrometheusText {
 public:
  // A sample: its rendered labels ("" or `{k="v",…}`, see labels()) and value.
  using Sample = std::pair<std::string, double>;

  void family(std::string_view name, std::string_view help, std::string_view type,
              const std::vector<Sample>& samples);
  // One sample, no labels.
  void gauge(std::string_view name, std::string_view help, double value) {
    family(name, help, "gauge", {{"", value}});
  }
  void counter(std::string_view name, std::string_view help, double value) {
    family(name, help, "counter", {{"", value}});
  }

  static std::string labels(
      const std::vector<std::pair<std::string_view, std::string_view>>& pairs);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace secbox
