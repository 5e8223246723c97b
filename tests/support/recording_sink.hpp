#pragma once
// An EventSink that records what it is given: every call (`given`), and the
// events the real queue would keep (`kept`: a clientId seen before is a
// duplicate, nothing new kept). It answers at once, as a committed enqueue
// would, or with the refusal a test switches on.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "replica/ports.hpp"

namespace secbox::testing {

class RecordingSink final : public replica::EventSink {
 public:
  void enqueue(replica::OutboundEvent event,
               std::function<void(Result<replica::Enqueued>)> done) override {
    given.push_back(event);
    if (refusal) return done(Error{*refusal, "refused by the test"});
    replica::Enqueued e;
    e.duplicate = !ids_.insert(event.client_id).second;
    if (!e.duplicate) kept.push_back(std::move(event));
    e.seq = static_cast<std::int64_t>(kept.size());
    done(e);
  }

  std::vector<replica::OutboundEvent> given;  // every enqueue, refused or duplicate too
  std::vector<replica::OutboundEvent> kept;   // once a clientId, in order
  std::optional<Errc> refusal;                // set: every enqueue is refused with it

 private:
  std::set<std::string> ids_;
};

}  // namespace secbox::testing
