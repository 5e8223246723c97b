#include "tunnel/cloud_session.hpp"

#include <cmath>

#include "common/time.hpp"

namespace secbox::tunnel {

HelloState empty_hello_state() {
  HelloState s;
  for (const char* e : {"community", "unit", "user", "guest_authorization", "banned_visitor"}) {
    s.cursors[e] = 0;
  }
  return s;
}

CloudSession::CloudSession(boost::asio::io_context& loop, BlockingPool& pool,
                           protocol::Dispatcher& dispatcher, Clock& clock, SessionSettings settings,
                           std::string token)
    : settings_(std::move(settings)), dispatcher_(dispatcher),
      rotator_(
          std::make_unique<JwtRotator>(loop, pool, clock, settings_.rotator, std::move(token))) {
  TunnelHooks hooks;
  hooks.token = [this]() -> std::optional<std::string> {
    if (rotator_->needs_pairing()) return std::nullopt;
    return rotator_->token();
  };
  hooks.on_open = [this] { send_hello(); };
  hooks.on_text = [this](std::string_view text) { dispatcher_.dispatch(text); };
  hooks.on_close = [this](std::uint16_t) {
    dispatcher_.fail_pending("the tunnel closed");
    dispatcher_.session_ended();
  };
  hooks.on_token_rejected = [this] {
    // A failed rotation keeps retrying inside the rotator; on_rotated resumes.
    rotator_->rotate_now(nullptr);
  };
  tunnel_ = std::make_unique<TunnelClient>(loop, settings_.tunnel, std::move(hooks));
  dispatcher_.set_transport(
      protocol::Transport{[this](const std::string& text) { return tunnel_->send_text(text); },
                          [this](const std::string& frame) { return tunnel_->send_binary(frame); },
                          [this] { return tunnel_->writable(); },
                          [this](const std::string& why) { tunnel_->reconnect(why); }});
  transport_set_ = true;

  rotator_->on_rotated([this] {
    if (tunnel_->state() == TunnelState::token_rejected) tunnel_->resume();
  });
  rotator_->on_needs_pairing([this] {
    tunnel_->hold();
    if (on_needs_pairing_) on_needs_pairing_();
  });

  // jwt.rotate is the control plane's (cloud-protocol §7.5: node control
  // decides whether the cloud may ask); it calls rotate_now().
}

CloudSession::~CloudSession() {
  // Made and dropped without a stop (a test, a failed start): the
  // dispatcher must not keep a way out through this.
  if (transport_set_) dispatcher_.clear_transport("the cloud session is gone");
}

void CloudSession::rotate_now(std::function<void(Result<void>)> done) {
  rotator_->rotate_now(std::move(done));
}

void CloudSession::start() {
  rotator_->start();
  tunnel_->start();
}

void CloudSession::stop(std::function<void()> on_stopped) {
  tunnel_->stop([this, on_stopped = std::move(on_stopped)]() mutable {
    transport_set_ = false;
    dispatcher_.clear_transport("the cloud session stopped");
    rotator_->stop(std::move(on_stopped));
  });
}

void CloudSession::send_hello() {
  dispatcher_.session_ended();  // a new connection: any session before it is over
  const HelloState state = hello_source_();
  nlohmann::json cursors = nlohmann::json::object();
  for (const auto& [entity, version] : state.cursors) cursors[entity] = version;
  nlohmann::json payload{
      {"deviceId", settings_.tunnel.device_id},
      {"version", settings_.tunnel.version},
      {"bootId", settings_.boot_id},
      {"cursors", cursors},
      {"queue",
       {{"depth", state.queue_depth},
        {"oldestAt", state.oldest_at ? nlohmann::json(*state.oldest_at) : nlohmann::json()}}}};
  dispatcher_.request(
      "hello", std::move(payload), settings_.welcome_timeout, [this](Result<protocol::Envelope> r) {
        if (r && r.value().type == "welcome") return on_welcome(r.value());
        if (r) {
          log_.warn("The cloud answered hello with something other than welcome; starting over.",
                    {{"type", r.value().type}});
        } else if (r.error().code == Errc::disconnected) {
          return;  // the next connection says hello again
        } else {
          log_.warn("The cloud did not welcome the box; starting over.",
                    {{"reason", r.error().message}});
        }
        tunnel_->reconnect("no welcome");
      });
}

void CloudSession::on_welcome(const protocol::Envelope& e) {
  if (auto server = e.payload.find("serverTime");
      server != e.payload.end() && server->is_string()) {
    if (auto t = parse_rfc3339(server->get<std::string>())) {
      skew_ = std::chrono::duration<double>(*t - WallClock::now()).count();
      if (std::abs(*skew_) > 60) {
        log_.warn("The box's clock differs from the cloud's by more than 60 s; check NTP.",
                  {{"skew_s", *skew_}});
      }
    }
  }
  log_.info("The cloud welcomed the box.",
            {{"resync", e.payload.value("resync", nlohmann::json::array()).dump()}});
  dispatcher_.session_started(e.payload);
}

}  // namespace secbox::tunnel
