#include "cloudsim/cloudsim.hpp"

#include "acme.hpp"
#include "common/hex.hpp"
#include <cstdio>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <unordered_set>
#include <thread>

#include "common/atomic_file.hpp"
#include "common/certificates.hpp"
#include "common/hex.hpp"
#include "common/time.hpp"
#include "acme.hpp"

namespace secbox::cloudsim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using WallClock = std::chrono::system_clock;
using namespace std::chrono_literals;

std::string b64url(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n));
  return s;
}

std::string bearer_of(const beast::string_view auth) {
  constexpr beast::string_view kPrefix = "Bearer ";
  if (auth.size() <= kPrefix.size() || !beast::iequals(auth.substr(0, kPrefix.size()), kPrefix)) {
    return "";
  }
  return std::string(auth.substr(kPrefix.size()));
}

}  // namespace

class WsSession;
class HttpSession;

struct CloudSim::Impl {
  explicit Impl(Options o) : opts(std::move(o)) {}

  Options opts;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  ssl::context ctx{ssl::context::tls_server};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  std::string ca_path;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Received> received;
  std::map<std::string, WallClock::time_point> tokens;  // issued token -> exp
  std::set<std::string> revoked;
  std::map<std::string, std::string> bootstraps;  // device -> bootstrap token
  std::set<std::string> used_bootstraps;
  int refresh_status = 0;
  int claim_status = 0;
  std::chrono::milliseconds claim_delay{0};
  json last_claim;
  bool answer_pings = true;
  bool auto_welcome = true;
  bool auto_ack = true;
  std::vector<std::string> after_welcome;
  std::unordered_set<std::string> event_ids;  // distinct clientIds of every events.batch
  long events_total = 0;
  int sessions_opened = 0;
  int sessions_rejected = 0;
  std::atomic<long> tls_records_in{0};
  int refresh_calls = 0;
  std::string last_bearer, last_subprotocol, last_device;
  std::map<std::string, std::string> published;  // /files/<name> -> path
  std::map<std::string, std::string> redirects;  // /files/<name> -> Location
  std::string install_script;                    // served at /install.sh, filled in
  std::uint64_t download_cut = 0;
  std::chrono::milliseconds download_delay{0};
  int file_requests = 0;
  EVP_PKEY* update_key = nullptr;    // owned; Ed25519
  std::unique_ptr<AcmeIssuer> acme;  // §7.7; null: no LAN names
  std::vector<std::thread> issuing;  // lego runs, joined at the end
  int lan_certificates_sent = 0;
  std::string update_pub_path;

  // Touched on the io thread only.
  std::vector<std::weak_ptr<WsSession>> ws_sessions;
  std::vector<std::weak_ptr<HttpSession>> http_sessions;
  int session_counter = 0;
  int message_counter = 0;

  template <class F>
  auto on_io(F f) -> decltype(f()) {
    using R = decltype(f());
    if (io.get_executor().running_in_this_thread()) return f();
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(f));
    auto fut = task->get_future();
    asio::post(io, [task] { (*task)(); });
    if (fut.wait_for(10s) != std::future_status::ready) std::abort();  // the sim is wedged
    return fut.get();
  }

  std::string next_id() { return "sim-" + std::to_string(++message_counter); }
  std::string lan_name_for(const std::string& device_id) const;
  template <class Envelope>
  void on_lan_cert_request(WsSession& s, const json& j, Envelope envelope);

  // The update signing key: <dir>/update-key.pem (private, made once) and
  // <dir>/update.pub (what a box pins).
  void load_update_key() {
    const std::string priv = opts.dir + "/update-key.pem";
    update_pub_path = opts.dir + "/update.pub";
    if (auto pem = read_file(priv, 1 << 16); pem) {
      std::unique_ptr<BIO, int (*)(BIO*)> bio(
          BIO_new_mem_buf(pem.value().data(), static_cast<int>(pem.value().size())), BIO_free);
      update_key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    }
    if (!update_key) {
      std::unique_ptr<EVP_PKEY_CTX, void (*)(EVP_PKEY_CTX*)> kctx(
          EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), EVP_PKEY_CTX_free);
      if (!kctx || EVP_PKEY_keygen_init(kctx.get()) != 1 ||
          EVP_PKEY_keygen(kctx.get(), &update_key) != 1) {
        throw std::runtime_error("cloudsim: cannot make the update key");
      }
      std::unique_ptr<BIO, int (*)(BIO*)> out(BIO_new(BIO_s_mem()), BIO_free);
      PEM_write_bio_PrivateKey(out.get(), update_key, nullptr, nullptr, 0, nullptr, nullptr);
      char* data = nullptr;
      const long n = BIO_get_mem_data(out.get(), &data);
      if (auto w = write_file_atomically(priv, std::string(data, static_cast<std::size_t>(n)),
                                         {0600, std::nullopt});
          !w) {
        throw std::runtime_error(w.error().message);
      }
    }
    std::unique_ptr<BIO, int (*)(BIO*)> out(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PUBKEY(out.get(), update_key);
    char* data = nullptr;
    const long n = BIO_get_mem_data(out.get(), &data);
    if (auto w = write_file_atomically(
            update_pub_path, std::string(data, static_cast<std::size_t>(n)), {0644, std::nullopt});
        !w) {
      throw std::runtime_error(w.error().message);
    }
  }

  std::string issue(const std::string& device, std::chrono::seconds lifetime) {
    const auto now = WallClock::now();
    const auto iat =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const json payload{{"sub", device}, {"iat", iat}, {"exp", iat + lifetime.count()}};
    std::string token = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." + b64url(payload.dump()) +
                        "." + b64url(random_bytes(32));
    std::lock_guard lock(mu);
    tokens[token] = now + lifetime;
    save_tokens();
    return token;
  }

  // Issued and revoked tokens live in <dir>/tokens.json, so a demo cloud that
  // restarts still knows the box (a real cloud would not forget it either).
  std::string tokens_path() const { return opts.dir + "/tokens.json"; }

  void save_tokens() {  // under mu
    json j{{"tokens", json::object()}, {"revoked", revoked}};
    const auto now = WallClock::now();
    for (auto it = tokens.begin(); it != tokens.end();) {
      if (now - it->second > 24h) {  // past any use, even refresh
        it = tokens.erase(it);
        continue;
      }
      j["tokens"][it->first] =
          std::chrono::duration_cast<std::chrono::seconds>(it->second.time_since_epoch()).count();
      ++it;
    }
    (void)write_file_atomically(tokens_path(), j.dump());
  }

  void load_tokens() {
    auto text = read_file(tokens_path(), 64u << 20);
    if (!text) return;
    auto j = json::parse(text.value(), nullptr, false);
    if (!j.is_object()) return;
    const json saved = j.value("tokens", json::object());  // outlives the loop
    for (const auto& [token, exp] : saved.items()) {
      if (exp.is_number_integer())
        tokens[token] = WallClock::time_point(std::chrono::seconds(exp.get<long long>()));
    }
    const json revoked_saved = j.value("revoked", json::array());
    for (const auto& t : revoked_saved) {
      if (t.is_string()) revoked.insert(t.get<std::string>());
    }
  }

  // The gateway closes with 4401 a token expired, with under 60 s left, or revoked.
  bool gateway_accepts(const std::string& token) {
    std::lock_guard lock(mu);
    auto it = tokens.find(token);
    return it != tokens.end() && !revoked.count(token) && it->second - WallClock::now() >= 60s;
  }
  // refresh-jwt accepts a token not revoked and expired less than 24 h ago.
  bool refresh_accepts(const std::string& token) {
    std::lock_guard lock(mu);
    auto it = tokens.find(token);
    return it != tokens.end() && !revoked.count(token) && WallClock::now() - it->second < 24h;
  }

  void record(Received r) {
    {
      std::lock_guard lock(mu);
      received.push_back(std::move(r));
    }
    cv.notify_all();
  }

  http::response<http::string_body> handle_http(const http::request<http::string_body>& req);
  void on_text(WsSession& s, const std::string& text);
  void listen();
  void do_accept();
  void shutdown_all();
  std::shared_ptr<WsSession> newest();
};

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::ssl_stream<beast::tcp_stream>&& stream, CloudSim::Impl& sim)
      : sim_(sim), ws_(std::move(stream)) {}

  void run(http::request<http::string_body> req) {
    req_ = std::move(req);
    bearer_ = bearer_of(req_[http::field::authorization]);
    const std::string protocols(req_[http::field::sec_websocket_protocol]);
    {
      std::lock_guard lock(sim_.mu);
      sim_.last_bearer = bearer_;
      sim_.last_subprotocol = protocols;
      sim_.last_device = std::string(req_["X-Device-Id"]);
    }
    device_ = std::string(req_["X-Device-Id"]);
    const bool wants_v1 = protocols.find("secbox.v1") != std::string::npos;
    ws_.set_option(websocket::stream_base::decorator([wants_v1](websocket::response_type& res) {
      if (wants_v1) res.set(http::field::sec_websocket_protocol, "secbox.v1");
    }));
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(64u << 20);
    ws_.async_accept(req_, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  void send(std::string data, bool binary) {
    queue_.emplace_back(std::move(data), binary);
    if (!writing_) do_write();
  }

  void close(std::uint16_t code, std::string reason) {
    if (closing_) return;
    close_code_ = code;
    close_reason_ = std::move(reason);
    closing_ = true;
    if (!writing_) do_close();
  }

  void kill() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  void resume_reading() {
    if (paused_) {
      paused_ = false;
      do_read();
    }
  }

  int id() const { return id_; }
  const std::string& device() const { return device_; }
  bool open() const { return open_ && !closing_; }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    if (req_.target() != "/ws/device") return close(1008, "unknown path");
    if (!sim_.gateway_accepts(bearer_)) {
      {
        std::lock_guard lock(sim_.mu);
        ++sim_.sessions_rejected;
      }
      return close(4401, "token rejected");
    }
    // No idle timer once open: Beast re-arms it on every read (a timerfd call
    // per message), and a test cloud has no idle boxes to shed.
    ws_.set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                                   websocket::stream_base::none(), false});
    id_ = ++sim_.session_counter;
    open_ = true;
    {
      std::lock_guard lock(sim_.mu);
      ++sim_.sessions_opened;
    }
    // A newer session of the same device replaces the older one (4409).
    for (auto& weak : sim_.ws_sessions) {
      if (auto other = weak.lock();
          other && other.get() != this && other->open() && other->device() == device_) {
        other->close(4409, "replaced by a newer session");
      }
    }
    // Forget ended sessions: a weak_ptr keeps a make_shared object's memory.
    auto& all = sim_.ws_sessions;
    all.erase(std::remove_if(all.begin(), all.end(), [](const auto& w) { return w.expired(); }),
              all.end());
    all.push_back(weak_from_this());
    do_read();
  }

  void do_read() {
    bool answer;
    {
      std::lock_guard lock(sim_.mu);
      answer = sim_.answer_pings;
    }
    if (!answer) {
      paused_ = true;  // no read pending: pings pile up unanswered
      return;
    }
    ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      open_ = false;
      return;
    }
    std::string data = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (ws_.got_text()) {
      sim_.on_text(*this, data);
    } else {
      sim_.record(Received{json(), std::move(data), true, id_});
    }
    do_read();
  }

  void do_write() {
    if (queue_.empty()) {
      writing_ = false;
      if (closing_) do_close();
      return;
    }
    writing_ = true;
    ws_.text(!queue_.front().second);
    ws_.async_write(asio::buffer(queue_.front().first),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->queue_.pop_front();
                      if (ec) {
                        self->writing_ = false;
                        self->queue_.clear();
                        return;
                      }
                      self->do_write();
                    });
  }

  void do_close() {
    open_ = false;
    ws_.async_close(
        websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
        [self = shared_from_this()](beast::error_code) {});
  }

  CloudSim::Impl& sim_;
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::string, bool>> queue_;
  std::string bearer_, device_, close_reason_;
  std::uint16_t close_code_ = 1000;
  bool writing_ = false, closing_ = false, paused_ = false, open_ = false;
  int id_ = 0;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, CloudSim::Impl& sim)
      : sim_(sim), stream_(std::move(socket), sim.ctx) {}

  void run() {
    beast::get_lowest_layer(stream_).expires_after(30s);
    stream_.async_handshake(
        ssl::stream_base::server,
        beast::bind_front_handler(&HttpSession::on_handshake, shared_from_this()));
  }

  void kill() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
  }

 private:
  void on_handshake(beast::error_code ec) {
    if (!ec) do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(1 << 20);
    beast::get_lowest_layer(stream_).expires_after(60s);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return;
    auto req = parser_->release();
    if (websocket::is_upgrade(req)) {
      beast::get_lowest_layer(stream_).expires_never();
      std::make_shared<WsSession>(std::move(stream_), sim_)->run(std::move(req));
      return;
    }
    res_ = sim_.handle_http(req);
    res_.keep_alive(req.keep_alive());
    res_.prepare_payload();
    // A cut download: the head announces the whole file, the connection
    // drops after the first bytes.
    const bool cut = res_.count("X-Sim-Cut") > 0;
    if (cut) {
      const auto keep = std::stoull(std::string(res_["X-Sim-Cut"]));
      res_.erase("X-Sim-Cut");
      if (keep < res_.body().size()) res_.body().resize(keep);
      res_.keep_alive(false);
    }
    http::async_write(stream_, res_,
                      [self = shared_from_this(), cut](beast::error_code ec, std::size_t) {
                        if (ec) return;
                        if (cut) return self->kill();
                        if (self->res_.keep_alive()) return self->do_read();
                        self->stream_.async_shutdown([self](beast::error_code) {});
                      });
  }

  CloudSim::Impl& sim_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

http::response<http::string_body> CloudSim::Impl::handle_http(
    const http::request<http::string_body>& req) {
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "application/json");
  auto reply = [&](unsigned status, const json& body) {
    res.result(status);
    res.body() = body.dump();
    return res;
  };
  const auto body = json::parse(req.body(), nullptr, false);
  if (req.method() == http::verb::post && req.target() == "/api/devices/refresh-jwt") {
    int forced;
    {
      std::lock_guard lock(mu);
      ++refresh_calls;
      forced = refresh_status;
    }
    if (forced != 0) return reply(static_cast<unsigned>(forced), {{"error", "simulated"}});
    const std::string token = bearer_of(req[http::field::authorization]);
    if (!refresh_accepts(token)) return reply(401, {{"error", "token not accepted"}});
    std::string device;
    {
      // The sub of the old token carries over.
      auto payload = token.substr(token.find('.') + 1);
      payload = payload.substr(0, payload.find('.'));
      std::string b64 = payload;
      for (auto& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
      while (b64.size() % 4) b64.push_back('=');
      std::string raw(b64.size(), '\0');
      int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                              reinterpret_cast<const unsigned char*>(b64.data()),
                              static_cast<int>(b64.size()));
      raw.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      auto claims = json::parse(raw.substr(0, raw.rfind('}') + 1), nullptr, false);
      if (claims.is_object() && claims.contains("sub")) device = claims["sub"].get<std::string>();
    }
    const auto fresh = issue(device, opts.token_lifetime);
    return reply(200, {{"deviceJwt", fresh},
                       {"expiresAt", format_rfc3339(WallClock::now() + opts.token_lifetime)}});
  }
  if (req.method() == http::verb::post && req.target() == "/api/devices/claim") {
    int forced;
    std::chrono::milliseconds delay;
    {
      std::lock_guard lock(mu);
      forced = claim_status;
      delay = claim_delay;
      last_claim = body;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    if (forced != 0) return reply(static_cast<unsigned>(forced), {{"error", "simulated"}});
    if (!body.is_object() || !body.contains("deviceId") || !body["deviceId"].is_string() ||
        !body.contains("bootstrapToken") || !body["bootstrapToken"].is_string()) {
      return reply(400, {{"error", "deviceId and bootstrapToken are required"}});
    }
    const auto device = body["deviceId"].get<std::string>();
    const auto bootstrap = body["bootstrapToken"].get<std::string>();
    {
      std::lock_guard lock(mu);
      auto it = bootstraps.find(device);
      if (it == bootstraps.end() || it->second != bootstrap) {
        return reply(401, {{"error", "unknown device or bootstrap token"}});
      }
      if (used_bootstraps.count(bootstrap)) return reply(409, {{"error", "already claimed"}});
      used_bootstraps.insert(bootstrap);
    }
    return reply(200, {{"deviceJwt", issue(device, opts.token_lifetime)},
                       {"expiresAt", format_rfc3339(WallClock::now() + opts.token_lifetime)}});
  }
  if (req.method() == http::verb::get && req.target() == "/install.sh") {
    std::lock_guard lock(mu);
    if (install_script.empty()) return reply(404, {{"error", "no install script is served"}});
    res.set(http::field::content_type, "text/x-shellscript");
    res.body() = install_script;
    return res;
  }
  if (req.method() == http::verb::get && req.target().starts_with("/files/")) {
    std::string path;
    std::uint64_t cut = 0;
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard lock(mu);
      if (auto r = redirects.find(std::string(req.target().substr(7))); r != redirects.end()) {
        res.result(http::status::found);
        res.set(http::field::location, r->second);
        return res;
      }
      auto it = published.find(std::string(req.target().substr(7)));
      if (it != published.end()) path = it->second;
      cut = download_cut;
      delay = download_delay;
      ++file_requests;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    auto bytes = path.empty() ? Result<std::string>(Error{Errc::not_found, ""})
                              : read_file(path, 512u << 20);
    if (!bytes) return reply(404, {{"error", "no such file"}});
    res.set(http::field::content_type, "application/octet-stream");
    res.set(http::field::accept_ranges, "bytes");
    std::string body = std::move(bytes).value();
    // Range: bytes=N- (what a resumed download asks).
    const std::string range(req[http::field::range]);
    if (range.rfind("bytes=", 0) == 0 && range.size() > 7 && range.back() == '-') {
      const std::uint64_t from = std::strtoull(range.c_str() + 6, nullptr, 10);
      if (from >= body.size()) {
        res.result(http::status::range_not_satisfiable);
        res.set(http::field::content_range, "bytes */" + std::to_string(body.size()));
        res.body().clear();
        return res;
      }
      res.result(http::status::partial_content);
      res.set(http::field::content_range, "bytes " + std::to_string(from) + "-" +
                                              std::to_string(body.size() - 1) + "/" +
                                              std::to_string(body.size()));
      body.erase(0, from);
    }
    res.body() = std::move(body);
    if (cut > 0) res.set("X-Sim-Cut", std::to_string(cut));
    return res;
  }
  return reply(404, {{"error", "no such route"}});
}

void CloudSim::Impl::on_text(WsSession& s, const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded()) j = json{{"unparsed", text}};
  // Recorded once answered (below), moved, not copied: a drain sends
  // thousands of batches of 500 events.
  struct Recorder {
    Impl& impl;
    json& message;
    int session;
    ~Recorder() { impl.record(Received{std::move(message), "", false, session}); }
  } recorder{*this, j, s.id()};
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return;
  const auto type = j["type"].get<std::string>();
  bool welcome, ack;
  {
    std::lock_guard lock(mu);
    welcome = auto_welcome;
    ack = auto_ack;
  }
  const std::string re = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : "";
  auto envelope = [&](const std::string& t, json payload) {
    return json{{"v", 1},          {"type", t},
                {"id", next_id()}, {"ts", format_rfc3339(WallClock::now())},
                {"re", re},        {"payload", std::move(payload)}}
        .dump();
  };
  if (type == "hello" && welcome) {
    json payload{{"serverTime", format_rfc3339_millis(WallClock::now())},
                 {"resync", json::array()}};
    if (acme && !s.device().empty()) payload["lan"] = {{"name", lan_name_for(s.device())}};
    s.send(envelope("welcome", std::move(payload)), false);
    std::vector<std::string> script;
    {
      std::lock_guard lock(mu);
      script = after_welcome;
    }
    for (const auto& text : script) s.send(text, false);
  } else if (type == "lan_cert.request") {
    on_lan_cert_request(s, j, envelope);
  } else if (type == "events.batch") {
    static const json kNone = json::array();
    const auto payload = j.find("payload");
    const json& events = payload != j.end() && payload->is_object() &&
                                 payload->contains("events") && (*payload)["events"].is_array()
                             ? (*payload)["events"]
                             : kNone;
    json ids = json::array();
    {
      std::lock_guard lock(mu);
      for (const auto& e : events) {
        if (!e.is_object() || !e.contains("clientId")) continue;
        ids.push_back(e["clientId"]);
        if (!e["clientId"].is_string()) continue;
        ++events_total;
        event_ids.insert(e["clientId"].get<std::string>());
      }
    }
    if (ack) s.send(envelope("events.ack", {{"clientIds", std::move(ids)}}), false);
  }
}

// §7.7: a name per device, opaque (never the community's): a hash of its id.
std::string CloudSim::Impl::lan_name_for(const std::string& device_id) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(device_id.data(), device_id.size(), md, &n, EVP_sha256(), nullptr);
  return to_hex(md, 4) + "." + opts.lan_zone;
}

// The box's CSR: its names checked as the real cloud would (exactly *.<name>
// and <name>), acknowledged, and the chain from the ACME server sent as
// lan_cert.install once it is issued (seconds: DNS-01).
template <class Envelope>
void CloudSim::Impl::on_lan_cert_request(WsSession& s, const json& j, Envelope envelope) {
  const auto csr = j.value("payload", json::object()).value("csr", json());
  if (!acme)
    return s.send(envelope("error", {{"code", "unavailable"}, {"message", "no ACME server"}}),
                  false);
  if (!csr.is_string())
    return s.send(envelope("error", {{"code", "invalid_args"}, {"message", "csr must be PEM"}}),
                  false);
  auto names = request_dns_names(csr.get<std::string>());
  // The device's name: the one welcome gave on this session.
  const std::string name = lan_name_for(s.device());
  std::vector<std::string> wanted{"*." + name, name};
  if (!names) {
    return s.send(
        envelope("error", {{"code", "invalid_args"}, {"message", "csr: " + names.error().message}}),
        false);
  }
  auto got = names.value();
  std::sort(got.begin(), got.end());
  std::sort(wanted.begin(), wanted.end());
  if (got != wanted) {
    return s.send(envelope("error", {{"code", "invalid_args"},
                                     {"message", "csr: its names must be exactly *." + name +
                                                     " and " + name}}),
                  false);
  }
  s.send(envelope("ack", json::object()), false);
  acme->add_a("127-0-0-1." + name, "127.0.0.1");
  std::lock_guard lock(mu);
  issuing.emplace_back([this, pem = csr.get<std::string>()] {
    auto chain = acme->issue(pem);
    if (!chain) {
      std::fprintf(stderr, "secbox-cloudsim: no LAN certificate: %s\n",
                   chain.error().message.c_str());
      return;
    }
    on_io([&] {
      if (auto device = newest()) {
        device->send(json{{"v", 1},
                          {"type", "lan_cert.install"},
                          {"id", next_id()},
                          {"ts", format_rfc3339(WallClock::now())},
                          {"payload", {{"chain", chain.value()}}}}
                         .dump(),
                     false);
        std::lock_guard l(mu);
        ++lan_certificates_sent;
      }
      return 0;
    });
  });
}

void CloudSim::Impl::listen() {
  acceptor = std::make_unique<tcp::acceptor>(io);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  acceptor->open(ep.protocol());
  acceptor->set_option(asio::socket_base::reuse_address(true));
  acceptor->bind(ep);
  acceptor->listen();
  port = acceptor->local_endpoint().port();
  do_accept();
}

void CloudSim::Impl::do_accept() {
  acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;
    auto session = std::make_shared<HttpSession>(std::move(socket), *this);
    http_sessions.erase(std::remove_if(http_sessions.begin(), http_sessions.end(),
                                       [](const auto& w) { return w.expired(); }),
                        http_sessions.end());
    http_sessions.push_back(session);
    session->run();
    do_accept();
  });
}

void CloudSim::Impl::shutdown_all() {
  if (acceptor) {
    beast::error_code ec;
    acceptor->close(ec);
    acceptor.reset();
  }
  for (auto& w : ws_sessions) {
    if (auto s = w.lock()) s->kill();
  }
  for (auto& w : http_sessions) {
    if (auto s = w.lock()) s->kill();
  }
  ws_sessions.clear();
  http_sessions.clear();
}

std::shared_ptr<WsSession> CloudSim::Impl::newest() {
  std::shared_ptr<WsSession> best;
  for (auto& w : ws_sessions) {
    if (auto s = w.lock(); s && s->open() && (!best || s->id() > best->id())) best = s;
  }
  return best;
}

CloudSim::CloudSim(Options options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(options_)) {
  auto& i = *impl_;
  i.port = options_.port;
  i.load_tokens();
  auto ca = make_self_signed({"secbox-cloudsim CA", {}, {}, std::chrono::hours(24 * 30), true});
  if (!ca) throw std::runtime_error(ca.error().message);
  if (!options_.lan_zone.empty()) {
    auto acme = AcmeIssuer::start(options_.dir + "/acme");
    if (acme) {
      i.acme = std::move(acme).value();
    } else {
      std::fprintf(stderr, "secbox-cloudsim: no LAN names are given: %s\n",
                   acme.error().message.c_str());
    }
  }
  KeyAndCert issuer = ca.value();
  CertRequest leaf{
      "127.0.0.1", {"localhost"}, {"127.0.0.1", "::1"}, std::chrono::hours(24 * 30), false};
  if (options_.cert == CertMode::untrusted) {
    issuer = make_self_signed({"nobody's CA", {}, {}, std::chrono::hours(24 * 30), true}).value();
  } else if (options_.cert == CertMode::wrong_host) {
    leaf.dns_names = {"other.example"};
    leaf.ip_addresses.clear();
  }
  auto server = make_signed(leaf, issuer);
  if (!server) throw std::runtime_error(server.error().message);
  i.ca_path = options_.dir + "/ca.pem";
  if (auto w = write_file_atomically(i.ca_path, ca.value().cert_pem, {0644, std::nullopt}); !w) {
    throw std::runtime_error(w.error().message);
  }
  i.ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  // Count the records read, to show whether a peer coalesces its writes.
  SSL_CTX_set_msg_callback_arg(i.ctx.native_handle(), &i.tls_records_in);
  SSL_CTX_set_msg_callback(
      i.ctx.native_handle(), [](int write_p, int, int content_type, const void* buf,
                                std::size_t len, SSL* ssl, void* arg) {
        if (write_p || content_type != SSL3_RT_HEADER || len < 1 || !SSL_is_init_finished(ssl)) {
          return;
        }
        if (static_cast<const unsigned char*>(buf)[0] == SSL3_RT_APPLICATION_DATA) {
          ++*static_cast<std::atomic<long>*>(arg);
        }
      });
  i.ctx.use_certificate_chain(asio::buffer(server.value().cert_pem));
  i.ctx.use_private_key(asio::buffer(server.value().key_pem), ssl::context::pem);
  i.load_update_key();
  i.work.emplace(i.io.get_executor());
  i.thread = std::thread([&i] { i.io.run(); });
  start();
}

CloudSim::~CloudSim() {
  stop();
  // Issues in flight end at once without their ACME server.
  if (impl_->acme) impl_->acme->shutdown();
  for (auto& t : impl_->issuing) t.join();
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  EVP_PKEY_free(impl_->update_key);
}

void CloudSim::start() {
  impl_->on_io([this] {
    if (!impl_->acceptor) impl_->listen();
    return 0;
  });
}

void CloudSim::stop() {
  impl_->on_io([this] {
    impl_->shutdown_all();
    return 0;
  });
}

std::uint16_t CloudSim::port() const { return impl_->port; }
std::string CloudSim::base_url() const { return "https://127.0.0.1:" + std::to_string(port()); }
std::string CloudSim::gateway_url() const {
  return "wss://127.0.0.1:" + std::to_string(port()) + "/ws/device";
}
std::string CloudSim::ca_file() const { return impl_->ca_path; }
std::string CloudSim::lan_roots_file() const {
  return impl_->acme ? impl_->acme->roots_file() : std::string();
}
std::string CloudSim::lan_name(const std::string& device_id) const {
  return impl_->lan_name_for(device_id);
}
int CloudSim::lan_certificates_sent() const {
  std::lock_guard lock(impl_->mu);
  return impl_->lan_certificates_sent;
}

std::string CloudSim::issue_token(const std::string& device_id, std::chrono::seconds lifetime) {
  return impl_->issue(device_id, lifetime);
}
void CloudSim::revoke(const std::string& token) {
  std::lock_guard lock(impl_->mu);
  impl_->revoked.insert(token);
  impl_->save_tokens();
}
void CloudSim::add_bootstrap(const std::string& device_id, const std::string& token) {
  std::lock_guard lock(impl_->mu);
  impl_->bootstraps[device_id] = token;
}
void CloudSim::set_refresh_status(int status) {
  std::lock_guard lock(impl_->mu);
  impl_->refresh_status = status;
}
void CloudSim::set_claim_delay(std::chrono::milliseconds delay) {
  std::lock_guard lock(impl_->mu);
  impl_->claim_delay = delay;
}
nlohmann::json CloudSim::last_claim() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_claim;
}
void CloudSim::set_claim_status(int status) {
  std::lock_guard lock(impl_->mu);
  impl_->claim_status = status;
}
void CloudSim::set_answer_pings(bool answer) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->answer_pings = answer;
  }
  if (answer) {
    impl_->on_io([this] {
      for (auto& w : impl_->ws_sessions) {
        if (auto s = w.lock()) s->resume_reading();
      }
      return 0;
    });
  }
}
void CloudSim::set_auto_welcome(bool on) {
  std::lock_guard lock(impl_->mu);
  impl_->auto_welcome = on;
}
std::size_t CloudSim::distinct_events() const {
  std::lock_guard lock(impl_->mu);
  return impl_->event_ids.size();
}
long CloudSim::events_received() const {
  std::lock_guard lock(impl_->mu);
  return impl_->events_total;
}

void CloudSim::set_after_welcome(std::vector<std::string> messages) {
  std::lock_guard lock(impl_->mu);
  impl_->after_welcome = std::move(messages);
}

std::string CloudSim::update_public_key_file() const { return impl_->update_pub_path; }

std::string CloudSim::sign_file(const std::string& path) const {
  auto bytes = read_file(path, 512u << 20);
  if (!bytes) throw std::runtime_error("cloudsim: cannot read " + path);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char sig[64];
  std::size_t n = sizeof sig;
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.value().data());
  if (!md || EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, impl_->update_key) != 1 ||
      EVP_DigestSign(md.get(), sig, &n, data, bytes.value().size()) != 1) {
    throw std::runtime_error("cloudsim: signing failed");
  }
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), sig, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::string CloudSim::publish(const std::string& name, const std::string& path) {
  std::lock_guard lock(impl_->mu);
  impl_->published[name] = path;
  return base_url() + "/files/" + name;
}

std::string CloudSim::update_private_key_file() const {
  return impl_->opts.dir + "/update-key.pem";
}

namespace {

std::string base64_of_file(const std::string& path) {
  auto bytes = read_file(path, 1 << 20);
  if (!bytes) throw std::runtime_error("cloudsim: cannot read " + path);
  std::string out(4 * ((bytes.value().size() + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.value().data()),
                                  static_cast<int>(bytes.value().size()));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

}  // namespace

nlohmann::json CloudSim::update_payload(const std::string& release_dir) {
  static std::atomic<int> serial{0};
  const std::string url = publish("releases/" + std::to_string(++serial) + "/secbox.tar.zst",
                                  release_dir + "/secbox.tar.zst");
  return {{"manifest", base64_of_file(release_dir + "/manifest.json")},
          {"signature", base64_of_file(release_dir + "/manifest.sig")},
          {"url", url}};
}

void CloudSim::serve_install(const std::string& script, const std::string& release_dir,
                             const std::string& arch) {
  auto text = read_file(script, 1 << 20);
  auto pub = read_file(impl_->update_pub_path, 1 << 16);
  if (!text || !pub)
    throw std::runtime_error("cloudsim: cannot read the install script or the update key");
  std::string filled = text.value();
  auto fill = [&filled](const std::string& line, const std::string& value) {
    const auto at = filled.find("\n  " + line + "=\"\"\n");
    if (at == std::string::npos)
      throw std::runtime_error("cloudsim: the install script has no " + line + " line");
    filled.replace(at + 1, line.size() + 5, "  " + line + "=\"" + value + "\"");
  };
  fill("CLOUD_URL", base_url());
  fill("UPDATE_KEY_B64", base64_of_file(impl_->update_pub_path));
  publish("secbox-linux-" + arch + ".manifest.json", release_dir + "/manifest.json");
  publish("secbox-linux-" + arch + ".manifest.sig", release_dir + "/manifest.sig");
  publish("secbox-linux-" + arch + ".tar.zst", release_dir + "/secbox.tar.zst");
  std::lock_guard lock(impl_->mu);
  impl_->install_script = std::move(filled);
}

void CloudSim::redirect(const std::string& name, const std::string& location) {
  std::lock_guard lock(impl_->mu);
  impl_->redirects[name] = location;
}

void CloudSim::set_download_cut(std::uint64_t bytes) {
  std::lock_guard lock(impl_->mu);
  impl_->download_cut = bytes;
}

void CloudSim::set_download_delay(std::chrono::milliseconds delay) {
  std::lock_guard lock(impl_->mu);
  impl_->download_delay = delay;
}

int CloudSim::file_requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->file_requests;
}

void CloudSim::set_auto_ack_events(bool on) {
  std::lock_guard lock(impl_->mu);
  impl_->auto_ack = on;
}

bool CloudSim::send_text(const std::string& text) {
  return impl_->on_io([&] {
    auto s = impl_->newest();
    if (s) s->send(text, false);
    return s != nullptr;
  });
}
bool CloudSim::send_binary(const std::string& bytes) {
  return impl_->on_io([&] {
    auto s = impl_->newest();
    if (s) s->send(bytes, true);
    return s != nullptr;
  });
}
bool CloudSim::close_device(std::uint16_t code, const std::string& reason) {
  return impl_->on_io([&] {
    auto s = impl_->newest();
    if (s) s->close(code, reason);
    return s != nullptr;
  });
}

std::vector<Received> CloudSim::received() const {
  std::lock_guard lock(impl_->mu);
  return impl_->received;
}
void CloudSim::clear_received() {
  std::lock_guard lock(impl_->mu);
  impl_->received.clear();
}

std::optional<Received> CloudSim::wait_for(const std::function<bool(const Received&)>& match,
                                           std::chrono::milliseconds limit) {
  std::unique_lock lock(impl_->mu);
  std::size_t seen = 0;
  std::optional<Received> found;
  impl_->cv.wait_for(lock, limit, [&] {
    for (; seen < impl_->received.size(); ++seen) {
      if (match(impl_->received[seen])) {
        found = impl_->received[seen];
        return true;
      }
    }
    return false;
  });
  return found;
}

std::optional<Received> CloudSim::wait_for_type(const std::string& type,
                                                std::chrono::milliseconds limit) {
  return wait_for(
      [&](const Received& r) {
        return !r.is_binary && r.message.is_object() && r.message.value("type", "") == type;
      },
      limit);
}

long CloudSim::tls_records_received() const { return impl_->tls_records_in.load(); }
int CloudSim::sessions_opened() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions_opened;
}
int CloudSim::sessions_rejected() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions_rejected;
}
int CloudSim::refresh_calls() const {
  std::lock_guard lock(impl_->mu);
  return impl_->refresh_calls;
}
std::string CloudSim::last_bearer() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_bearer;
}
std::string CloudSim::last_subprotocol() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_subprotocol;
}
std::string CloudSim::last_device_header() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_device;
}

}  // namespace secbox::cloudsim
