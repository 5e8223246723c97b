#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <dirent.h>
#include <thread>

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

int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

// On the loop: the child runs while the loop goes on with other work, and no
// thread is taken for it; its end comes back through the pidfd.
TEST(Process, OnTheLoopNoThreadIsHeldWhileTheChildRuns) {
  boost::asio::io_context io;
  const int threads_before = thread_count();
  std::optional<Result<ProcessResult>> result;
  int ticks = 0;
  int threads_while_running = 0;
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "sleep 0.5; echo done"};
  start_process(io, o, [&](Result<ProcessResult> r) { result = std::move(r); });
  boost::asio::steady_timer tick(io);
  std::function<void()> next = [&] {
    tick.expires_after(std::chrono::milliseconds(50));
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (ec || result) return;
      ++ticks;
      threads_while_running = thread_count();
      next();
    });
  };
  next();
  io.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(result && *result) << (result ? result->error().message : "no result");
  EXPECT_EQ(result->value().out, "done\n");
  EXPECT_GE(ticks, 3) << "the loop went on while the child ran";
  EXPECT_LE(threads_while_running, threads_before);
}

// A cancellation from another thread reaches the child through an eventfd
// at once, not at the next poll; a blocking wait on it ends too.
TEST(Process, ACancellationFromAnotherThreadKillsTheGroup) {
  testing::TempDir dir;
  const auto pidfile = dir.file("grandchild.pid");
  auto cancel = std::make_shared<Cancellation>();
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "sleep 60 & echo $! > " + pidfile + "; wait"};
  o.timeout = std::chrono::seconds(60);
  o.cancel = cancel;
  std::thread stopper([cancel, pidfile] {
    for (int i = 0; i < 500 && testing::TempDir::read(pidfile).empty(); ++i) ::usleep(10000);
    cancel->cancel();
  });
  auto r = run_process(o);
  stopper.join();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r.value().cancelled);
  EXPECT_FALSE(r.value().timed_out);
  EXPECT_EQ(r.value().describe(), "stopped: the daemon is stopping");
  const pid_t grandchild = std::stoi(testing::TempDir::read(pidfile));
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = ::kill(grandchild, 0) != 0;
    if (!gone) ::usleep(10000);
  }
  EXPECT_TRUE(gone);
  EXPECT_TRUE(cancel->wait_for(std::chrono::hours(1)))
      << "a wait on a cancelled stop returns at once";
}

// Signals are blocked across the fork and every one is reset in the child: a
// signal the daemon ignores (SIGPIPE, or any other: SIGUSR2) or blocks is
// neither ignored nor blocked in the program it starts.
TEST(Process, TheChildStartsWithNoSignalBlockedOrIgnored) {
  struct sigaction ignore {
  }, old{}, old_usr2{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  ::sigaction(SIGUSR2, &ignore, &old_usr2);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
  auto r = run_process(argv_only({"/bin/grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"}));
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old, nullptr);
  ::sigaction(SIGUSR2, &old_usr2, nullptr);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

// The live video's extra output: fd 3 is a pipe of its own, and nothing else
// of the daemon's is inherited.
TEST(Process, AThirdPipeOnFd3) {
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "echo three >&3; ls /proc/$$/fd"};
  o.pipe_fd3 = true;
  auto child = spawn_child(o);
  ASSERT_TRUE(child) << child.error().message;
  std::string out, three;
  char buf[256];
  for (ssize_t n; (n = ::read(child.value().out, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  for (ssize_t n; (n = ::read(child.value().fd3, buf, sizeof buf)) > 0;)
    three.append(buf, static_cast<std::size_t>(n));
  int status = 0;
  ::waitpid(child.value().pid, &status, 0);
  for (int fd : {child.value().out, child.value().err, child.value().fd3, child.value().pidfd})
    ::close(fd);
  EXPECT_EQ(three, "three\n");
  EXPECT_EQ(out, "0\n1\n2\n3\n");
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace secbox
