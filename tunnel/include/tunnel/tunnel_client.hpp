#pragma once
// The outbound WSS connection to the cloud (cloud-protocol §4): connects with
// the device JWT, verifies the cloud's certificate (system trust store plus
// CLOUD_CA_FILE, host name checked), and reconnects forever with backoff
// (0.5 s doubling to 30 s, full jitter, reset after 60 s up). It pings every
// 20 s and declares the peer dead when nothing arrives within 10 s of a ping.
// Close 4401 stops it until resume() (the token must be rotated first);
// 4409 and every other close or failure reconnect after the backoff. Incoming
// frames over 16 MiB are refused (1009); writable() is false while more than
// 4 MiB wait in the send buffer.
//
// Runs on the app's io_context (no thread of its own); every method is for
// the loop thread. Owned by the appliance; stop() ends it for good.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/component.hpp"

namespace secbox::tunnel {

struct TunnelSettings {
  std::string gateway_url;  // wss://host[:port]/path
  std::string device_id;
  std::string version;
  std::string ca_file;  // extra trusted CA (CLOUD_CA_FILE); empty: system store only
  std::chrono::milliseconds ping_interval{20000};
  std::chrono::milliseconds dead_after{10000};
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds backoff_reset_after{60000};
  std::size_t max_frame = 16u << 20;
  std::size_t send_buffer_limit = 4u << 20;
};

enum class TunnelState { idle, connecting, connected, backing_off, token_rejected, stopped };
const char* to_string(TunnelState state);

struct TunnelHooks {
  std::function<std::optional<std::string>()> token;  // the JWT to connect with
  std::function<void()> on_open;                      // send hello here
  std::function<void(std::string_view)> on_text;
  std::function<void(std::uint16_t code)> on_close;  // after open, any cause
  std::function<void()> on_token_rejected;           // 4401: rotate, then resume()
};

class TunnelClient final : public Component {
 public:
  TunnelClient(boost::asio::io_context& loop, TunnelSettings settings, TunnelHooks hooks);
  ~TunnelClient() override;

  std::string_view name() const override { return "tunnel"; }
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  // After a 4401: the token was rotated; connect again (after the backoff).
  void resume();
  // Disconnects and stays down until resume() (needs-pairing).
  void hold();
  // Drops the current connection (1001) and connects again after the
  // backoff: for a session that stopped making progress (no welcome, a batch
  // never acknowledged).
  void reconnect(const std::string& why);

  bool send_text(const std::string& text);
  bool send_binary(const std::string& bytes);
  bool writable() const;
  std::size_t buffered_bytes() const;

  TunnelState state() const;
  int reconnects() const;
  std::optional<std::chrono::milliseconds> rtt() const;  // of the last ping

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace secbox::tunnel
