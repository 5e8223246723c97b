#include "tunnel/tunnel_client.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <random>
#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_client.hpp>

#include "common/log.hpp"

namespace secbox::tunnel {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// websocketpp's logs, warnings and above, routed to ours (its access log is off).
template <typename Concurrency, typename Names>
class RoutedLog {
 public:
  explicit RoutedLog(
      websocketpp::log::channel_type_hint::value = websocketpp::log::channel_type_hint::access) {}
  RoutedLog(websocketpp::log::level channels, websocketpp::log::channel_type_hint::value)
      : static_(channels) {}
  void set_channels(websocketpp::log::level c) { dynamic_ |= c & static_; }
  void clear_channels(websocketpp::log::level c) { dynamic_ &= ~c; }
  void write(websocketpp::log::level channel, const std::string& msg) {
    if (!dynamic_test(channel)) return;
    log::Logger("websocketpp").warn(msg, {{"channel", Names::channel_name(channel)}});
  }
  void write(websocketpp::log::level channel, const char* msg) { write(channel, std::string(msg)); }
  constexpr bool static_test(websocketpp::log::level channel) const {
    return (channel & static_) != 0;
  }
  bool dynamic_test(websocketpp::log::level channel) { return (channel & dynamic_) != 0; }

 private:
  websocketpp::log::level static_ = 0xffffffff;
  websocketpp::log::level dynamic_ = 0;
};

// websocketpp's transport resolves with Asio's default flags, which include
// AI_ADDRCONFIG: glibc then answers "Address family for hostname not
// supported" for every IPv4 address, 127.0.0.1 included, on a box whose only
// non-loopback addresses are IPv6 (a LAN without DHCP, or a container
// bridge with a link-local address: seen under a real systemd). This endpoint
// resolves without it (async_connect tries each address in turn) and hands
// the result to websocketpp's own connect step. Proxies keep the original.
template <typename TransportConfig>
class ResolvingEndpoint : public websocketpp::transport::asio::endpoint<TransportConfig> {
  using Base = websocketpp::transport::asio::endpoint<TransportConfig>;

 protected:
  void async_connect(typename Base::transport_con_ptr tcon, websocketpp::uri_ptr u,
                     websocketpp::transport::connect_handler cb) {
    if (!tcon->get_proxy().empty()) return Base::async_connect(tcon, u, cb);
    if (!resolver_) resolver_ = std::make_unique<asio::ip::tcp::resolver>(this->get_io_service());
    tcon->set_uri(u);
    typename Base::timer_ptr dns_timer;
    dns_timer = tcon->set_timer(TransportConfig::timeout_dns_resolve,
                                [this, cb](const websocketpp::lib::error_code& ec) {
                                  this->handle_resolve_timeout(nullptr, cb, ec);
                                });
    // Numeric ports only (the URL's), so the service is never looked up.
    resolver_->async_resolve(
        u->get_host(), u->get_port_str(), asio::ip::resolver_base::numeric_service,
        tcon->get_strand()->wrap(
            [this, tcon, dns_timer, cb](const boost::system::error_code& ec,
                                        asio::ip::tcp::resolver::results_type results) {
              this->handle_resolve(tcon, dns_timer, cb, ec, results.begin());
            }));
  }

 private:
  std::unique_ptr<asio::ip::tcp::resolver> resolver_;
};

struct Config : websocketpp::config::asio_tls_client {
  typedef Config type;
  typedef websocketpp::config::asio_tls_client base;
  typedef RoutedLog<concurrency_type, websocketpp::log::elevel> elog_type;
  typedef RoutedLog<concurrency_type, websocketpp::log::alevel> alog_type;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::warn |
                                                    websocketpp::log::elevel::rerror |
                                                    websocketpp::log::elevel::fatal;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
  static const long timeout_open_handshake = 10000;
  static const long timeout_close_handshake = 2000;
  static const size_t max_message_size = 16u << 20;

  struct transport_config : public base::transport_config {
    typedef type::concurrency_type concurrency_type;
    typedef type::alog_type alog_type;
    typedef type::elog_type elog_type;
    typedef type::request_type request_type;
    typedef type::response_type response_type;
    // Small writes need no help to share TLS records: websocketpp gathers the
    // queued messages into one write, and Asio's SSL stream copies up to 8 KiB
    // of a gather list into one record (tested: 200 small messages, 25 records).
    typedef base::transport_config::socket_type socket_type;
    static const long timeout_dns_resolve = 10000;
    static const long timeout_connect = 10000;
    static const long timeout_socket_shutdown = 1000;
  };
  typedef ResolvingEndpoint<transport_config> transport_type;
};

using Client = websocketpp::client<Config>;

std::string host_of(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find_first_of("/?#", start);
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (!authority.empty() && authority[0] == '[')
    return authority.substr(1, authority.find(']') - 1);
  return authority.substr(
      0, authority.rfind(':') == std::string::npos ? std::string::npos : authority.rfind(':'));
}

}  // namespace

const char* to_string(TunnelState s) {
  switch (s) {
    case TunnelState::idle:
      return "idle";
    case TunnelState::connecting:
      return "connecting";
    case TunnelState::connected:
      return "connected";
    case TunnelState::backing_off:
      return "backing-off";
    case TunnelState::token_rejected:
      return "token-rejected";
    case TunnelState::stopped:
      return "stopped";
  }
  return "unknown";
}

struct TunnelClient::Impl {
  Impl(asio::io_context& loop, TunnelSettings s, TunnelHooks h)
      : loop(loop), settings(std::move(s)), hooks(std::move(h)),
        host(host_of(settings.gateway_url)), reconnect_timer(loop), ping_timer(loop),
        dead_timer(loop), rng(std::random_device{}()) {
    client.init_asio(&loop);
    client.set_tls_init_handler([this](websocketpp::connection_hdl) { return make_tls(); });
    client.set_open_handler([this](websocketpp::connection_hdl h) { on_open(h); });
    client.set_fail_handler([this](websocketpp::connection_hdl h) { on_fail(h); });
    client.set_close_handler([this](websocketpp::connection_hdl h) { on_close(h); });
    client.set_message_handler(
        [this](websocketpp::connection_hdl h, Client::message_ptr m) { on_message(h, m); });
    client.set_pong_handler([this](websocketpp::connection_hdl h, std::string) { on_pong(h); });
  }

  asio::io_context& loop;
  TunnelSettings settings;
  TunnelHooks hooks;
  std::string host;
  Client client;
  websocketpp::connection_hdl current;
  asio::steady_timer reconnect_timer, ping_timer, dead_timer;
  std::mt19937_64 rng;
  log::Logger log{"tunnel"};
  TunnelState state = TunnelState::idle;
  int attempt = 0;
  int reconnects = 0;
  bool held = false;
  SteadyClock::time_point opened_at, last_rx, ping_sent;
  std::optional<std::chrono::milliseconds> rtt;
  std::function<void()> on_stopped;

  std::shared_ptr<asio::ssl::context> make_tls() {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ctx->set_default_verify_paths(ec);
    if (!settings.ca_file.empty()) {
      ctx->load_verify_file(settings.ca_file, ec);
      if (ec)
        log.error("Cannot load CLOUD_CA_FILE; only the system's CAs are trusted.",
                  {{"file", settings.ca_file}, {"reason", ec.message()}});
    }
    ctx->set_verify_mode(asio::ssl::verify_peer);
    ctx->set_verify_callback(asio::ssl::host_name_verification(host));
    return ctx;
  }

  Client::connection_ptr connection() {
    websocketpp::lib::error_code ec;
    auto con = client.get_con_from_hdl(current, ec);
    return ec ? nullptr : con;
  }

  bool is_current(websocketpp::connection_hdl h) const {
    return !current.owner_before(h) && !h.owner_before(current) && !current.expired();
  }

  void connect() {
    if (state == TunnelState::stopped || held) return;
    auto token = hooks.token ? hooks.token() : std::nullopt;
    if (!token) {
      state = TunnelState::idle;
      log.warn("No device token; the tunnel stays down until the box is paired.");
      return;
    }
    websocketpp::lib::error_code ec;
    auto con = client.get_connection(settings.gateway_url, ec);
    if (ec) {
      log.error("The gateway URL is not usable; retrying later.", {{"reason", ec.message()}});
      return schedule_reconnect("bad gateway URL");
    }
    con->append_header("Authorization", "Bearer " + *token);
    con->append_header("X-Device-Id", settings.device_id);
    con->append_header("X-Secbox-Version", settings.version);
    con->add_subprotocol("secbox.v1");
    con->set_max_message_size(settings.max_frame);
    current = con->get_handle();
    state = TunnelState::connecting;
    client.connect(con);
  }

  void schedule_reconnect(const std::string& why) {
    if (state == TunnelState::stopped || held) return;
    const auto cap = std::min<std::chrono::milliseconds>(
        settings.backoff_max, settings.backoff_initial * (1LL << std::min(attempt, 20)));
    std::uniform_int_distribution<long long> jitter(0, cap.count());
    const auto delay = std::chrono::milliseconds(jitter(rng));
    ++attempt;
    state = TunnelState::backing_off;
    log.info("Reconnecting to the cloud in " + std::to_string(delay.count()) + " ms (" + why + ").",
             {{"attempt", attempt}});
    reconnect_timer.expires_after(delay);
    reconnect_timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      ++reconnects;
      connect();
    });
  }

  void on_open(websocketpp::connection_hdl h) {
    if (!is_current(h)) return;
    auto con = connection();
    // websocketpp 0.8.2's client never fills get_subprotocol() from the
    // server's answer: the response header is the truth.
    if (con && con->get_response_header("Sec-WebSocket-Protocol") != "secbox.v1") {
      log.error("The gateway did not accept the secbox.v1 subprotocol; closing.");
      con->close(websocketpp::close::status::protocol_error, "secbox.v1 required");
      return;
    }
    state = TunnelState::connected;
    opened_at = last_rx = SteadyClock::now();
    log.info("Connected to the cloud.", {{"host", host}});
    schedule_ping();
    if (hooks.on_open) hooks.on_open();
  }

  void on_fail(websocketpp::connection_hdl h) {
    if (!is_current(h)) return;
    auto con = connection();
    std::string why = con ? con->get_ec().message() : "unknown";
    if (con && con->get_transport_ec() && con->get_transport_ec() != con->get_ec()) {
      why += ": " + con->get_transport_ec().message();
    }
    if (con && con->get_response_code() != 0 && con->get_response_code() != 101) {
      why += " (HTTP " + std::to_string(con->get_response_code()) + ")";
    }
    log.warn("Could not connect to the cloud.", {{"reason", why}});
    stop_timers();
    if (state == TunnelState::stopped) return finish_stop();
    schedule_reconnect("connection failed");
  }

  void on_close(websocketpp::connection_hdl h) {
    if (!is_current(h)) return;
    auto con = connection();
    const auto remote = con ? con->get_remote_close_code() : 0;
    const auto local = con ? con->get_local_close_code() : 0;
    // When the box closed (a 1009 for an oversized frame) and the cloud never
    // echoed it, the remote code is only "abnormal"; the box's own is the cause.
    const bool remote_real = remote != websocketpp::close::status::no_status &&
                             remote != websocketpp::close::status::abnormal_close;
    const std::uint16_t code =
        remote_real || local == websocketpp::close::status::no_status ? remote : local;
    stop_timers();
    const bool was_up = state == TunnelState::connected;
    if (was_up && SteadyClock::now() - opened_at >= settings.backoff_reset_after) attempt = 0;
    log.info("The tunnel closed.", {{"code", code}, {"by", remote_real ? "cloud" : "box"}});
    if (hooks.on_close) hooks.on_close(code);
    if (state == TunnelState::stopped) return finish_stop();
    if (held) {
      state = TunnelState::idle;
      return;
    }
    if (remote == 4401) {
      state = TunnelState::token_rejected;
      log.warn("The cloud rejected the device token (4401); rotating it before reconnecting.");
      if (hooks.on_token_rejected) hooks.on_token_rejected();
      return;
    }
    schedule_reconnect(remote == 4409 ? "replaced by a newer session (4409)"
                                      : "closed with " + std::to_string(code));
  }

  void on_message(websocketpp::connection_hdl h, Client::message_ptr m) {
    if (!is_current(h)) return;
    last_rx = SteadyClock::now();
    if (m->get_opcode() == websocketpp::frame::opcode::text) {
      if (hooks.on_text) hooks.on_text(m->get_payload());
    } else {
      log.debug("Ignoring a binary frame from the cloud.");
    }
  }

  void on_pong(websocketpp::connection_hdl h) {
    if (!is_current(h)) return;
    last_rx = SteadyClock::now();
    rtt = std::chrono::duration_cast<std::chrono::milliseconds>(last_rx - ping_sent);
  }

  void schedule_ping() {
    ping_timer.expires_after(settings.ping_interval);
    ping_timer.async_wait([this](boost::system::error_code ec) {
      if (ec || state != TunnelState::connected) return;
      auto con = connection();
      if (!con) return;
      websocketpp::lib::error_code pec;
      ping_sent = SteadyClock::now();
      con->ping("", pec);
      dead_timer.expires_after(settings.dead_after);
      dead_timer.async_wait([this](boost::system::error_code ec2) {
        if (ec2 || state != TunnelState::connected) return;
        if (last_rx >= ping_sent) return;
        log.warn("Nothing from the cloud within " + std::to_string(settings.dead_after.count()) +
                 " ms of a ping; dropping the connection.");
        if (auto c = connection())
          c->terminate(websocketpp::error::make_error_code(websocketpp::error::general));
      });
      schedule_ping();
    });
  }

  void stop_timers() {
    ping_timer.cancel();
    dead_timer.cancel();
  }

  void finish_stop() {
    if (auto done = std::move(on_stopped)) {
      on_stopped = nullptr;
      done();
    }
  }

  // Closes the current connection, if any; true when a close is under way.
  bool close_current(std::uint16_t code, const std::string& reason) {
    auto con = connection();
    if (!con) return false;
    websocketpp::lib::error_code ec;
    if (con->get_state() == websocketpp::session::state::open) {
      con->close(code, reason, ec);
      return !ec;
    }
    if (con->get_state() == websocketpp::session::state::connecting) {
      con->terminate(websocketpp::error::make_error_code(websocketpp::error::general));
      return true;
    }
    return false;
  }
};

TunnelClient::TunnelClient(asio::io_context& loop, TunnelSettings settings, TunnelHooks hooks)
    : impl_(std::make_unique<Impl>(loop, std::move(settings), std::move(hooks))) {}

TunnelClient::~TunnelClient() = default;

void TunnelClient::start() {
  impl_->held = false;
  impl_->connect();
}

void TunnelClient::stop(std::function<void()> on_stopped) {
  auto& i = *impl_;
  i.reconnect_timer.cancel();
  i.stop_timers();
  const bool closing = i.state == TunnelState::connected || i.state == TunnelState::connecting;
  i.state = TunnelState::stopped;
  i.on_stopped = std::move(on_stopped);
  if (!closing || !i.close_current(websocketpp::close::status::going_away, "box shutting down")) {
    i.finish_stop();
  }
}

void TunnelClient::resume() {
  auto& i = *impl_;
  if (i.state == TunnelState::stopped) return;
  i.held = false;
  if (i.state == TunnelState::token_rejected || i.state == TunnelState::idle) {
    i.schedule_reconnect("token renewed");
  }
}

void TunnelClient::hold() {
  auto& i = *impl_;
  i.held = true;
  i.reconnect_timer.cancel();
  i.stop_timers();
  if (!i.close_current(websocketpp::close::status::normal, "box needs pairing")) {
    i.state = TunnelState::idle;
  }
}

void TunnelClient::reconnect(const std::string& why) {
  auto& i = *impl_;
  if (i.state != TunnelState::connected) return;
  i.log.warn("Dropping the connection to start over.", {{"reason", why}});
  i.close_current(websocketpp::close::status::going_away, why);
}

bool TunnelClient::send_text(const std::string& text) {
  auto con = impl_->connection();
  if (!con || impl_->state != TunnelState::connected) return false;
  return !con->send(text, websocketpp::frame::opcode::text);
}

bool TunnelClient::send_binary(const std::string& bytes) {
  auto con = impl_->connection();
  if (!con || impl_->state != TunnelState::connected) return false;
  return !con->send(bytes, websocketpp::frame::opcode::binary);
}

std::size_t TunnelClient::buffered_bytes() const {
  auto con = impl_->connection();
  return con ? con->get_buffered_amount() : 0;
}

bool TunnelClient::writable() const {
  return impl_->state == TunnelState::connected &&
         buffered_bytes() <= impl_->settings.send_buffer_limit;
}

TunnelState TunnelClient::state() const { return impl_->state; }
int TunnelClient::reconnects() const { return impl_->reconnects; }
std::optional<std::chrono::milliseconds> TunnelClient::rtt() const { return impl_->rtt; }

}  // namespace secbox::tunnel
