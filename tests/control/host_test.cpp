// Host figures read from a proc tree the test writes (as Linux lays it out)
// and from the real one: CPU busy share between two samples, load, memory,
// network counters (lo left out), uptime, disks; a missing or short file is
// no figure, never a made-up one.
#include "control/host.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "temp_dir.hpp"

namespace secbox::control {
namespace {

using secbox::testing::TempDir;

TEST(Host, FiguresAsProcShowsThem) {
  TempDir proc;
  ::mkdir(proc.file("net").c_str(), 0700);
  proc.write("stat", "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n");
  proc.write("loadavg", "0.42 0.30 0.20 1/123 4567\n");
  proc.write(
      "meminfo",
      "MemTotal:        2048000 kB\nMemFree:          100000 kB\nMemAvailable:    1024000 kB\n"
      "HugePages_Total:       0\n");
  proc.write("net/dev",
             "Inter-|   Receive                                                |  Transmit\n"
             " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
             "errs drop fifo colls carrier compressed\n"
             "    lo:  5000      50    0    0    0     0          0         0     5000      50    "
             "0    0    0     0       0          0\n"
             "  eth0: 123456   1000    0    0    0     0          0         0    654321     900    "
             "0    0    0     0       0          0\n"
             " wlan0:     10      1    0    0    0     0          0         0        20       2    "
             "0    0    0     0       0          0\n");
  proc.write("uptime", "3600.55 7000.10\n");

  auto a = read_cpu_times(proc.path());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->total, 1000u);
  EXPECT_EQ(a->busy, 150u) << "idle and iowait are not busy";
  proc.write("stat", "cpu  200 0 100 1550 150 0 0 0 0 0\n");
  auto b = read_cpu_times(proc.path());
  ASSERT_TRUE(b);
  EXPECT_DOUBLE_EQ(cpu_usage_pct(*a, *b), 15.0);  // 150 busy of 1000
  EXPECT_DOUBLE_EQ(cpu_usage_pct(*b, *a), 0.0) << "a counter going back is no figure";
  EXPECT_DOUBLE_EQ(read_load1(proc.path()).value(), 0.42);
  auto m = read_memory(proc.path());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->total_bytes, 2048000ull * 1024);
  EXPECT_EQ(m->available_bytes, 1024000ull * 1024);
  auto all = read_network({}, proc.path());
  ASSERT_EQ(all.size(), 2u) << all.dump();
  EXPECT_EQ(all[0],
            (nlohmann::json{{"interface", "eth0"}, {"rxBytes", 123456}, {"txBytes", 654321}}));
  auto only = read_network({"wlan0"}, proc.path());
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0]["interface"], "wlan0");
  EXPECT_EQ(read_uptime_s(proc.path()).value(), 3600u);
}

TEST(Host, MissingOrShortFilesAreNoFigure) {
  TempDir proc;
  EXPECT_FALSE(read_cpu_times(proc.path()));
  EXPECT_FALSE(read_load1(proc.path()));
  EXPECT_FALSE(read_memory(proc.path()));
  EXPECT_FALSE(read_uptime_s(proc.path()));
  EXPECT_TRUE(read_network({}, proc.path()).empty());
  proc.write("stat", "cpu  1 2 3\n");
  EXPECT_FALSE(read_cpu_times(proc.path()));
  proc.write("meminfo", "MemTotal: 100 kB\n");
  EXPECT_FALSE(read_memory(proc.path())) << "no MemAvailable";
}

TEST(Host, TheRealMachine) {
  ASSERT_TRUE(read_cpu_times());
  ASSERT_TRUE(read_memory());
  EXPECT_GT(read_memory()->total_bytes, 0u);
  auto disks = read_disks({"/", "/no/such/path"});
  ASSERT_EQ(disks.size(), 1u);
  EXPECT_EQ(disks[0]["path"], "/");
  EXPECT_GT(disks[0]["totalBytes"].get<std::uint64_t>(),
            disks[0]["freeBytes"].get<std::uint64_t>() / 2);
}

}  // namespace
}  // namespace secbox::control
