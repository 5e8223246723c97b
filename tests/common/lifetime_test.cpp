#include "common/lifetime.hpp"

#include <gtest/gtest.h>

#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace secbox {
namespace {

// Work handed out before a stop: completions that come back afterwards are
// dropped, and on_stopped runs once, when the last of them is back, never
// from inside stop() itself.
TEST(Lifetime, OnStoppedWaitsForTheLastPieceOfWorkAndLaterCompletionsAreDropped) {
  boost::asio::io_context io;
  Lifetime life(io);
  life.begin();
  life.begin();
  EXPECT_TRUE(life.end()) << "not stopping: the completion runs";
  life.begin();
  int stopped = 0;
  life.stop([&] { ++stopped; });
  EXPECT_TRUE(life.stopping());
  EXPECT_EQ(stopped, 0) << "never from inside stop()";
  io.poll();
  EXPECT_EQ(stopped, 0) << "two pieces of work are still out";
  EXPECT_FALSE(life.end()) << "stopping: the completion is dropped";
  EXPECT_EQ(stopped, 0);
  EXPECT_FALSE(life.end());
  EXPECT_EQ(stopped, 1) << "the last one back calls on_stopped";
  life.stop([&] { ++stopped; });
  io.restart();
  io.poll();
  EXPECT_EQ(stopped, 1) << "once";
  EXPECT_EQ(life.in_flight(), 0);
}

TEST(Lifetime, WithNothingOutOnStoppedRunsFromTheLoop) {
  boost::asio::io_context io;
  int stopped = 0;
  {
    Lifetime life(io);
    life.stop([&] { ++stopped; });
    EXPECT_EQ(stopped, 0);
    io.poll();
    EXPECT_EQ(stopped, 1);
  }
  // A Lifetime gone before its posted check runs owes nothing (ASan would
  // see a use after free).
  auto gone = std::make_unique<Lifetime>(io);
  gone->stop([&] { ++stopped; });
  gone.reset();
  io.restart();
  io.poll();
  EXPECT_EQ(stopped, 1);
}

TEST(LoopAffinity, TheThreadThatMadeItIsTheLoop) {
  LoopAffinity affinity;
  EXPECT_TRUE(affinity.on_loop());
  affinity.assert_on_loop("test");  // passes
  bool elsewhere = true;
  std::thread([&] { elsewhere = affinity.on_loop(); }).join();
  EXPECT_FALSE(elsewhere);
}

#ifndef NDEBUG
TEST(LoopAffinityDeathTest, ALoopOnlyCallFromAnotherThreadStopsADebugBuild) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  LoopAffinity affinity;
  EXPECT_DEATH(std::thread([&] { affinity.assert_on_loop("Test::entry"); }).join(),
               "loop-only entry point");
}
#endif

}  // namespace
}  // namespace secbox
