#pragma once
// A clock a test moves: time stands still until advance(), which moves both
// the steady and the wall time and fires, on the loop, every wait that has
// come due, earliest first. A wait of hours is a step, not a sleep.
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "common/clock.hpp"

namespace secbox::testing {

class ManualClock final : public Clock {
 public:
  // Wall time starts at the system's now: tokens and certificates made by
  // real peers for the test still look fresh.
  explicit ManualClock(boost::asio::io_context& loop)
      : loop_(loop), wall_(std::chrono::system_clock::now()), waits_(std::make_shared<Waits>()) {}

  std::chrono::steady_clock::time_point steady_now() const override { return steady_; }
  std::chrono::system_clock::time_point wall_now() const override { return wall_; }
  std::unique_ptr<Timer> make_timer() override {
    return std::make_unique<ManualTimer>(*this, waits_);
  }

  // Moves time on by `by`, stopping at each wait that comes due on the way
  // (earliest first, so a wait sees the time it asked for) and posting its
  // call to the loop. What a call sets when the loop runs it is due at the
  // next advance: step through a chain of waits, running the loop between.
  void advance(std::chrono::steady_clock::duration by) {
    const auto end = steady_ + by;
    while (!waits_->due.empty() && waits_->due.begin()->first.first <= end) {
      auto it = waits_->due.begin();
      move_to(std::max(steady_, it->first.first));
      auto fired = std::move(it->second);
      waits_->due.erase(it);
      boost::asio::post(loop_, std::move(fired));
    }
    move_to(end);
  }
  // Waits not fired yet.
  std::size_t pending() const { return waits_->due.size(); }

 private:
  // Keyed by (due time, sequence): equal times fire in the order they were set.
  struct Waits {
    std::map<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>, std::function<void()>>
        due;
    std::uint64_t sequence = 0;
  };

  class ManualTimer final : public Timer {
   public:
    ManualTimer(ManualClock& clock, std::shared_ptr<Waits> waits)
        : clock_(clock), waits_(std::move(waits)) {}
    ~ManualTimer() override { cancel(); }
    void wait(std::chrono::steady_clock::duration after, std::function<void()> fired) override {
      cancel();
      key_ = {clock_.steady_now() + after, ++waits_->sequence};
      // The timer may be gone when the posted call runs: it checks.
      auto alive = alive_;
      waits_->due.emplace(*key_, [alive, fired = std::move(fired)] {
        if (*alive) fired();
      });
    }
    void cancel() override {
      if (key_) waits_->due.erase(*key_);
      key_.reset();
      *alive_ = false;
      alive_ = std::make_shared<bool>(true);
    }

   private:
    ManualClock& clock_;
    std::shared_ptr<Waits> waits_;
    std::optional<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> key_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  };

  void move_to(std::chrono::steady_clock::time_point t) {
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(t - steady_);
    steady_ = t;
  }

  boost::asio::io_context& loop_;
  std::chrono::steady_clock::time_point steady_{};
  std::chrono::system_clock::time_point wall_;
  std::shared_ptr<Waits> waits_;
};

}  // namespace secbox::testing
