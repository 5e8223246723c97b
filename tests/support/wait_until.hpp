#pragma once
// A bounded wait on something outside the test's own loop (a child process,
// a file, a simulator): polls `done` every `every` for at most `limit`.
#include <chrono>
#include <thread>

namespace secbox::testing {

template <class F>
bool wait_until(F done, std::chrono::milliseconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(every);
  }
  return true;
}

}  // namespace secbox::testing
