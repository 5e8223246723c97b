#pragma once
// What every component that stops shares: the loop it belongs to, the work
// it has out (a worker's job, a child, a database call), and the one
// on_stopped it owes once that work is back.
//
//   life.begin();                       // before handing work out
//   pool.run(fn, [self, done](auto r) {
//     if (self->life.end()) done(r);    // false once stopping: dropped
//   });
//   ...
//   life.stop(std::move(on_stopped));   // on_stopped, on the loop, once
//                                       // nothing is out any more
//
// assert_on_loop() marks the entry points only the loop thread may call: the
// thread that made the object. A call from another thread is a bug that
// would race with the loop; a debug build (the tests, the sanitizers) stops
// there, a release build logs it once.
//
// Loop thread only (but for assert_on_loop, any thread).
#include <functional>
#include <memory>
#include <thread>

namespace boost::asio {
class io_context;
}

namespace secbox {

// The thread that made it is the loop's.
class LoopAffinity {
 public:
  LoopAffinity() : owner_(std::this_thread::get_id()) {}
  // `where` names the entry point in the report.
  void assert_on_loop(const char* where) const;
  bool on_loop() const { return std::this_thread::get_id() == owner_; }

 private:
  std::thread::id owner_;
};

class Lifetime {
 public:
  explicit Lifetime(boost::asio::io_context& loop);
  ~Lifetime();
  Lifetime(const Lifetime&) = delete;
  Lifetime& operator=(const Lifetime&) = delete;

  // One piece of work goes out.
  void begin();
  // It is back: true when its completion should run. Once stopping, false
  // (the completion is dropped), and the last one back calls on_stopped.
  [[nodiscard]] bool end();
  // Stopping from now on; on_stopped runs on the loop, posted, once nothing
  // is out (at once if nothing is). A second stop is ignored, as is a stop
  // with no on_stopped but for the stopping state.
  void stop(std::function<void()> on_stopped);

  bool stopping() const;
  int in_flight() const;
  void assert_on_loop(const char* where) const { affinity_.assert_on_loop(where); }

 private:
  struct State;  // shared with the posted on_stopped, which may outlive this

  boost::asio::io_context& loop_;
  LoopAffinity affinity_;
  std::shared_ptr<State> state_;
};

}  // namespace secbox
