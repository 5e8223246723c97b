#include "common/clock.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace secbox {
namespace {

class AsioTimer final : public Timer {
 public:
  explicit AsioTimer(boost::asio::io_context& loop) : timer_(loop) {}
  void wait(std::chrono::steady_clock::duration after, std::function<void()> fired) override {
    timer_.expires_after(after);  // cancels the wait before, if any
    // The generation tells a wait replaced in the same turn of the loop
    // (its handler already queued, not aborted) from the current one.
    timer_.async_wait(
        [this, generation = ++generation_, fired = std::move(fired)](boost::system::error_code ec) {
          if (ec || generation != generation_) return;
          fired();
        });
  }
  void cancel() override {
    ++generation_;
    timer_.cancel();
  }

 private:
  boost::asio::steady_timer timer_;  // destroyed with this: its handlers are aborted
  std::uint64_t generation_ = 0;
};

class SystemClock final : public Clock {
 public:
  explicit SystemClock(boost::asio::io_context& loop) : loop_(loop) {}
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point wall_now() const override {
    return std::chrono::system_clock::now();
  }
  std::unique_ptr<Timer> make_timer() override { return std::make_unique<AsioTimer>(loop_); }

 private:
  boost::asio::io_context& loop_;
};

}  // namespace

std::unique_ptr<Clock> system_clock_on(boost::asio::io_context& loop) {
  return std::make_unique<SystemClock>(loop);
}

}  // namespace secbox
