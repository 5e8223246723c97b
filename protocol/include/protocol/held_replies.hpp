#pragma once
// Replies a component keeps while their answer is computed elsewhere (a
// worker, a stream's first frame): held by a number the work carries, taken
// back when it is done. When the component stops (or its streams end with
// their session), release_all() lets every held reply go unanswered, and a
// late take() finds nothing.
//
// Loop thread only.
#include <cstdint>
#include <map>
#include <optional>

#include "protocol/router.hpp"

namespace secbox::protocol {

class HeldReplies {
 public:
  std::uint64_t hold(Reply reply) {
    held_.emplace(++next_, std::move(reply));
    return next_;
  }
  // The reply, if it is still held.
  std::optional<Reply> take(std::uint64_t id) {
    auto it = held_.find(id);
    if (it == held_.end()) return std::nullopt;
    Reply r = std::move(it->second);
    held_.erase(it);
    return r;
  }
  void release_all() {
    for (auto& [id, reply] : held_) reply.release();
    held_.clear();
  }
  std::size_t size() const { return held_.size(); }

 private:
  std::map<std::uint64_t, Reply> held_;
  std::uint64_t next_ = 0;
};

}  // namespace secbox::protocol
