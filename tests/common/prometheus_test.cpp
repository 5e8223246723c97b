// The Prometheus text writer: the family's header, samples, escaped labels.
#include "common/prometheus.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace secbox {
namespace {

TEST(PrometheusText, FamiliesSamplesAndEscapedLabels) {
  PrometheusText t;
  t.gauge("secbox_up", "1 while up.", 1);
  t.family("secbox_camera_fps", "Frames per second.", "gauge",
           {{PrometheusText::labels({{"camera", "gate \"north\"\n\\x"}}), 12.5},
            {PrometheusText::labels({{"camera", "b"}, {"status", "200"}}), 3}});
  t.counter("secbox_total", "A count with a\\backslash\nand a newline in its help.", 1e12);
  t.gauge("secbox_nan", "Not a number.", std::nan(""));
  EXPECT_EQ(t.text(),
            "# HELP secbox_up 1 while up.\n# TYPE secbox_up gauge\nsecbox_up 1\n"
            "# HELP secbox_camera_fps Frames per second.\n# TYPE secbox_camera_fps gauge\n"
            "secbox_camera_fps{camera=\"gate \\\"north\\\"\\n\\\\x\"} 12.5\n"
            "secbox_camera_fps{camera=\"b\",status=\"200\"} 3\n"
            "# HELP secbox_total A count with a\\\\backslash\\nand a newline in its help.\n"
            "# TYPE secbox_total counter\nsecbox_total 1000000000000\n"
            "# HELP secbox_nan Not a number.\n# TYPE secbox_nan gauge\nsecbox_nan NaN\n");
  EXPECT_EQ(PrometheusText::labels({}), "");
}

}  // namespace
}  // namespace secbox
