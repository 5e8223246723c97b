#pragma once
// Runs an io_context until a condition holds or a time limit passes (every
// wait in a test is bounded). Returns whether the condition held.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>

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

}  // namespace secbox::testing
