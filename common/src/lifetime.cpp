#include "common/lifetime.hpp"

#include <atomic>
#include <cstdlib>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "common/log.hpp"

namespace secbox {

void LoopAffinity::assert_on_loop(const char* where) const {
  if (on_loop()) return;
  static std::atomic<bool> reported{false};
  if (!reported.exchange(true)) {
    log::Logger("loop").error(
        "A loop-only entry point was called from another thread; this is a bug.",
        {{"where", where}});
  }
#ifndef NDEBUG
  std::abort();
#endif
}

struct Lifetime::State {
  int in_flight = 0;
  bool stopping = false;
  std::function<void()> on_stopped;

  void maybe_stopped() {
    if (!stopping || in_flight > 0 || !on_stopped) return;
    auto f = std::move(on_stopped);
    on_stopped = nullptr;
    f();
  }
};

Lifetime::Lifetime(boost::asio::io_context& loop)
    : loop_(loop), state_(std::make_shared<State>()) {}
Lifetime::~Lifetime() = default;

bool Lifetime::stopping() const { return state_->stopping; }
int Lifetime::in_flight() const { return state_->in_flight; }

void Lifetime::begin() {
  assert_on_loop("Lifetime::begin");
  ++state_->in_flight;
}

bool Lifetime::end() {
  assert_on_loop("Lifetime::end");
  --state_->in_flight;
  if (!state_->stopping) return true;
  state_->maybe_stopped();
  return false;
}

void Lifetime::stop(std::function<void()> on_stopped) {
  assert_on_loop("Lifetime::stop");
  if (state_->stopping) return;
  state_->stopping = true;
  state_->on_stopped = std::move(on_stopped);
  // Never from inside stop(): the caller finishes its own stop first. A
  // Lifetime destroyed meanwhile owes nothing any more.
  boost::asio::post(loop_, [weak = std::weak_ptr<State>(state_)] {
    if (auto s = weak.lock()) s->maybe_stopped();
  });
}

}  // namespace secbox
