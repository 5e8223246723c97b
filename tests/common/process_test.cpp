#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/process.hpp"
#include "temp_dir.hpp"

namespace secbox {
namespace {

ProcessOptions argv_only(std::vector<std::string> argv) {
  ProcessOptions o;
  o.argv = std::move(argv);
  return o;
}

TEST(Process, CapturesOutputAndExitCode) {
  auto r = run_process(argv_only({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().exit_code, 3);
  EXPECT_EQ(r.value().out, "out\n");
  EXPECT_EQ(r.value().err, "err\n");
  EXPECT_FALSE(r.value().succeeded());
  EXPECT_NE(r.value().describe().find("exited with 3: err"), std::string::npos);
}

// A descriptor the daemon holds without close-on-exec (a listening socket,
// say) never reaches a child: after a crash it would hold the port.
TEST(Process, TheChildInheritsNoDescriptorBeyondItsStandardThree) {
  const int leaky = ::socket(AF_INET, SOCK_STREAM, 0);  // no SOCK_CLOEXEC, as a library might
  ASSERT_GE(leaky, 3);
  auto r = run_process(argv_only({"/bin/sh", "-c", "ls /proc/$$/fd"}));
  ::close(leaky);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().out, "0\n1\n2\n") << "the shell's own descriptors only";
}

TEST(Process, ArgumentsAreNotInterpretedByAShell) {
  auto r = run_process(argv_only({"/bin/echo", "; rm -rf / $(id) `x`"}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().out, "; rm -rf / $(id) `x`\n");
}

TEST(Process, MissingProgramIsASpawnError) {
  auto r = run_process(argv_only({"/nonexistent/prog"}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::spawn);
}

TEST(Process, TimeoutKillsTheWholeProcessGroup) {
  testing::TempDir dir;
  const auto pidfile = dir.file("grandchild.pid");
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "sleep 60 & echo $! > " + pidfile + "; wait"};
  o.timeout = std::chrono::milliseconds(300);
  auto r = run_process(o);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.value().timed_out);
  pid_t grandchild = std::stoi(testing::TempDir::read(pidfile));
  // The grandchild was in the killed group; give the kernel a bounded moment to reap.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = ::kill(grandchild, 0) != 0;
    if (!gone) ::usleep(10000);
  }
  EXPECT_TRUE(gone);
}

TEST(Process, OutputIsCapped) {
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "head -c 200000 /dev/zero"};
  o.max_output = 1000;
  auto r = run_process(o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().out.size(), 1000u);
  EXPECT_EQ(r.value().exit_code, 0);
}

TEST(Process, CleanEnvironment) {
  ProcessOptions o;
  o.argv = {"/usr/bin/env"};
  o.env = std::vector<std::string>{"ONLY=this"};
  auto r = run_process(o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().out, "ONLY=this\n");
}

TEST(Process, RunsAsAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  auto nobody = lookup_user("nobody");
  ASSERT_TRUE(nobody);
  ProcessOptions o;
  o.argv = {"/usr/bin/id", "-u"};
  o.run_as = nobody;
  auto r = run_process(o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().out, std::to_string(nobody->uid) + "\n");
}

}  // namespace
}  // namespace secbox
