#pragma once
// The one place where threads are crossed. run() executes a blocking function
// (libpqxx, curl easy calls, fsync, waiting on a child process) on the pool's
// threads and posts its result back to the event loop, where on_done runs.
//
// A pool of one thread is a serial executor: the replica's connection lives on
// one so that it is used by one task at a time.
//
// If fn returns a Result<T> and throws, the exception becomes
// Error{Errc::internal, what()}; any other fn must not throw.
#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/result.hpp"

namespace secbox {

namespace detail {
template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<Result<T>> : std::true_type {};
}  // namespace detail

class BlockingPool {
 public:
  // Called from the loop thread; owned by whoever owns the loop.
  BlockingPool(boost::asio::io_context& loop, std::size_t threads) : loop_(loop), pool_(threads) {}
  ~BlockingPool() { shutdown(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Any thread. on_done runs on the loop thread with fn's result.
  template <class Fn, class Done>
  void run(Fn fn, Done on_done) {
    // The guard keeps the loop running while the task is in flight.
    boost::asio::post(pool_, [fn = std::move(fn), on_done = std::move(on_done),
                              work = boost::asio::make_work_guard(loop_)]() mutable {
      auto ex = work.get_executor();
      using R = std::invoke_result_t<Fn&>;
      if constexpr (std::is_void_v<R>) {
        fn();
        boost::asio::post(ex, std::move(on_done));
      } else {
        R result = call(fn);
        boost::asio::post(ex, [result = std::move(result), on_done = std::move(on_done)]() mutable {
          on_done(std::move(result));
        });
      }
    });
  }

  // Waits for the running tasks to finish; queued ones are dropped.
  void shutdown() {
    pool_.stop();
    pool_.join();
  }

  boost::asio::io_context& loop() { return loop_; }

 private:
  template <class Fn>
  static auto call(Fn& fn) -> std::invoke_result_t<Fn&> {
    using R = std::invoke_result_t<Fn&>;
    if constexpr (detail::is_result<R>::value) {
      try {
        return fn();
      } catch (const std::exception& e) {
        return Error{Errc::internal, e.what()};
      } catch (...) {
        return Error{Errc::internal, "unknown exception"};
      }
    } else {
      return fn();
    }
  }

  boost::asio::io_context& loop_;
  boost::asio::thread_pool pool_;
};

}  // namespace secbox
