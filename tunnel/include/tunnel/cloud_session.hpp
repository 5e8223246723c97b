#pragma once
// The box's session with the cloud: the tunnel, the message dispatcher and
// the device-token rotator put together (cloud-protocol §3, §4.2). On every
// connection it sends `hello` first; it handles `welcome` (and keeps the
// clock skew) and a 4401 close (rotate, then reconnect); `jwt.rotate` is the
// control plane's, which calls rotate_now() (docs/wire-format.md §7.5); a
// token the cloud no longer accepts puts it in needs-pairing, tunnel held.
//
// It is the transport under the appliance's one protocol::Dispatcher: it
// sets itself as the dispatcher's transport when made, tells it when the
// cloud welcomes a connection and when the connection closes (components
// hear both through Router::on_session), and clears the transport when it
// stops. A re-pairing stops one session and makes the next.
//
// Loop thread only. Owned by the appliance; the dispatcher outlives it.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/blocking.hpp"
#include "common/component.hpp"
#include "protocol/dispatcher.hpp"
#include "tunnel/jwt_rotator.hpp"
#include "tunnel/tunnel_client.hpp"

namespace secbox::tunnel {

// What hello reports (the replica provides it; zeros until it does).
struct HelloState {
  std::map<std::string, std::int64_t> cursors;  // every entity of §5
  std::int64_t queue_depth = 0;
  std::optional<std::string> oldest_at;
};
HelloState empty_hello_state();

struct SessionSettings {
  TunnelSettings tunnel;
  RotatorSettings rotator;
  std::string boot_id;
  // No welcome within this of the hello: the session is stuck; start over.
  std::chrono::milliseconds welcome_timeout{30000};
};

class CloudSession final : public Component {
 public:
  CloudSession(boost::asio::io_context& loop, BlockingPool& pool, protocol::Dispatcher& dispatcher,
               Clock& clock, SessionSettings settings, std::string token);
  ~CloudSession() override;

  std::string_view name() const override { return "cloud"; }
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  protocol::Router& router() { return dispatcher_; }
  protocol::Dispatcher& dispatcher() { return dispatcher_; }
  TunnelClient& tunnel() { return *tunnel_; }
  void set_hello_source(std::function<HelloState()> source) { hello_source_ = std::move(source); }
  void on_needs_pairing(std::function<void()> f) { on_needs_pairing_ = std::move(f); }

  // Rotates the device token now (jwt.rotate, as node control allows it);
  // done as JwtRotator::rotate_now's.
  void rotate_now(std::function<void(Result<void>)> done);

  bool welcomed() const { return dispatcher_.in_session(); }
  bool needs_pairing() const { return rotator_->needs_pairing(); }
  std::optional<double> clock_skew_seconds() const { return skew_; }
  std::optional<WallClock::time_point> token_expires_at() const { return rotator_->expires_at(); }

 private:
  void send_hello();
  void on_welcome(const protocol::Envelope& welcome);

  SessionSettings settings_;
  protocol::Dispatcher& dispatcher_;
  std::unique_ptr<TunnelClient> tunnel_;
  bool transport_set_ = false;
  std::unique_ptr<JwtRotator> rotator_;
  std::function<HelloState()> hello_source_ = empty_hello_state;
  std::function<void()> on_needs_pairing_;
  std::optional<double> skew_;
  log::Logger log_{"cloud"};
};

}  // namespace secbox::tunnel
