#pragma once
// The lifecycle every long-lived service shares (tunnel client, replica sync,
// media supervisor, LAN server), so that appliance/ wires them in one place.
// Both methods are called on the loop thread, in dependency order for start
// and in reverse for stop.
#include <functional>
#include <string_view>

namespace secbox {

class Component {
 public:
  virtual ~Component() = default;
  virtual std::string_view name() const = 0;
  // Begins the component's work; it must not block. Failures are the
  // component's own to report (log, health) and retry.
  virtual void start() = 0;
  // Cancels timers, closes sockets, stops children; calls on_stopped exactly
  // once, on the loop thread, when nothing of it remains in flight.
  virtual void stop(std::function<void()> on_stopped) = 0;
};

}  // namespace secbox
