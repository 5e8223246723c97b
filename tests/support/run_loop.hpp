#pragma once
// Runs an io_context until a condition holds or a time limit passes (every
// wait in a test is bounded). Returns whether the condition held.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <future>

namespace secbox::testing {

inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  return done();
}

// Runs `work` on another thread (a blocking client) while the loop serves,
// for at most `limit`; returns what it returned.
template <class F>
auto serve_while(boost::asio::io_context& io, F work,
                 std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  auto f = std::async(std::launch::async, std::move(work));
  run_until(
      io, [&] { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, limit);
  return f.get();
}

// Stops a component (a server) and runs the loop until it says it stopped.
template <class C>
bool stop_and_wait(boost::asio::io_context& io, C& component,
                   std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  bool stopped = false;
  component.stop([&] { stopped = true; });
  return run_until(
      io, [&] { return stopped; }, limit);
}

}  // namespace secbox::testing
