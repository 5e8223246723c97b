#pragma once
// The time a component reads and the timers it waits on, injected: the box
// runs on the system's clocks and Asio's timers (system_clock_on), a test
// on a clock it moves itself (tests/support/manual_clock.hpp), so that a
// wait of hours is a step, not a sleep.
//
// Loop thread only: timers fire on the loop they were made for.
#include <chrono>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace secbox {

class Timer {
 public:
  virtual ~Timer() = default;
  // Calls `fired` on the loop once `after` has passed on the timer's clock.
  // A new wait replaces the one before, which is then never called; so is a
  // wait cancelled, or one whose timer is destroyed.
  virtual void wait(std::chrono::steady_clock::duration after, std::function<void()> fired) = 0;
  virtual void cancel() = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  // For intervals and deadlines.
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;
  // For what is said to the world (RFC 3339 times, a token's expiry).
  virtual std::chrono::system_clock::time_point wall_now() const = 0;
  virtual std::unique_ptr<Timer> make_timer() = 0;
};

// The system's clocks, and steady timers on `loop`.
std::unique_ptr<Clock> system_clock_on(boost::asio::io_context& loop);

}  // namespace secbox
