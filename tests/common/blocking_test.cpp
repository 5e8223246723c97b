#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "common/blocking.hpp"
#include "loop_probe.hpp"

namespace secbox {
namespace {

TEST(BlockingPool, ResultComesBackOnTheLoopThread) {
  boost::asio::io_context io;
  BlockingPool pool(io, 2);
  std::thread::id worker, done_thread;
  int value = 0;
  pool.run(
      [&] {
        worker = std::this_thread::get_id();
        return 42;
      },
      [&](int v) {
        done_thread = std::this_thread::get_id();
        value = v;
      });
  io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(value, 42);
  EXPECT_NE(worker, std::this_thread::get_id());
  EXPECT_EQ(done_thread, std::this_thread::get_id());
}

TEST(BlockingPool, ExceptionInAResultTaskBecomesAnError) {
  boost::asio::io_context io;
  BlockingPool pool(io, 1);
  std::string message;
  pool.run([]() -> Result<int> { throw std::runtime_error("db gone"); },
           [&](Result<int> r) {
             message = r ? "ok" : std::string(to_string(r.error().code)) + ": " + r.error().message;
           });
  io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(message, "internal: db gone");
}

TEST(BlockingPool, LoopKeepsTurningWhileATaskBlocks) {
  boost::asio::io_context io;
  BlockingPool pool(io, 1);
  int ticks_before_done = -1;
  testing::LoopProbe probe(io, std::chrono::milliseconds(5));
  pool.run([] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); },
           [&] {
             ticks_before_done = probe.ticks();
             probe.stop();
           });
  io.run_for(std::chrono::seconds(10));
  // Had the sleep run on the loop, no tick could have fired before it ended.
  EXPECT_GE(ticks_before_done, 5);
}

}  // namespace
}  // namespace secbox
