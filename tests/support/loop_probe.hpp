#pragma once
// Proves the loop keeps turning: a timer that counts its ticks until stopped.
// If some work blocked the loop, no tick would fire while it ran.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>

namespace secbox::testing {

class LoopProbe {
 public:
  LoopProbe(boost::asio::io_context& io, std::chrono::milliseconds period)
      : timer_(io), period_(period) {
    schedule();
  }
  int ticks() const { return ticks_; }
  void stop() { timer_.cancel(); }

 private:
  void schedule() {
    timer_.expires_after(period_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      ++ticks_;
      schedule();
    });
  }
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds period_;
  int ticks_ = 0;
};

}  // namespace secbox::testing
