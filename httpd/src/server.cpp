#include "httpd/server.hpp"

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <set>

#include "common/listen.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "plain_stream.hpp"
#include "tls_stream.hpp"

namespace secbox::httpd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// TLS 1.2 with ECDHE and AEAD only (the certificate is ECDSA); TLS 1.3's
// suites are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305";

std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

// What the server and a stream handle see of a connection, whichever its
// stream (TLS or plain).
class Connection {
 public:
  virtual ~Connection() = default;
  virtual const std::string& block() const = 0;
  // Since when it has been waiting: for its handshake, or for its next
  // request and while that request arrives (slow headers, a trickling
  // body); nullopt while a request is handled or answered (a stream too).
  virtual std::optional<std::chrono::steady_clock::time_point> waiting_since() const = 0;
  // It has shown a valid session (Request::trust): never closed for a newcomer.
  virtual bool trusted() const = 0;
  virtual void evict() = 0;
  virtual void close() = 0;
  virtual bool stream_write(std::string chunk) = 0;
  virtual std::size_t stream_waiting() const = 0;
  virtual void end_stream() = 0;
};

// The handle a streamed response's writer holds: it reaches the connection
// while it lives, and says closed once it is gone.
class StreamHandle final : public ResponseStream,
                           public std::enable_shared_from_this<StreamHandle> {
 public:
  explicit StreamHandle(std::weak_ptr<Connection> session) : session_(std::move(session)) {}
  bool write(std::string chunk) override;
  std::size_t waiting() const override {
    auto s = session_.lock();
    return s && !closed_ ? s->stream_waiting() : 0;
  }
  void close() override;
  bool closed() const override { return closed_; }
  void on_closed(std::function<void()> callback) override {
    if (closed_) return callback();
    on_closed_ = std::move(callback);
  }
  void mark_closed() {
    if (closed_) return;
    closed_ = true;
    auto f = std::move(on_closed_);
    on_closed_ = nullptr;
    if (f) f();
  }

 private:
  std::weak_ptr<Connection> session_;
  bool closed_ = false;
  std::function<void()> on_closed_;
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io, Settings s, Handler h)
      : io(io), settings(std::move(s)), handler(std::move(h)), acceptor(io), log(settings.name) {}

  asio::io_context& io;
  Settings settings;
  Handler handler;
  // Null for a plain server. Replaced whole when the certificate is renewed;
  // a connection keeps the one it was accepted with.
  std::shared_ptr<ssl::context> tls;
  // The certificate for names under `named` (SNI), when there is one.
  std::string named;
  std::shared_ptr<ssl::context> named_tls;
  tcp::acceptor acceptor;
  std::set<std::shared_ptr<Connection>> sessions;
  log::Logger log;
  bool stopped = false;
  int bound_port = 0;

  bool plain() const { return settings.cert_pem.empty() && settings.key_pem.empty(); }
  std::shared_ptr<ssl::context> make_tls(const std::string& cert_pem, const std::string& key_pem);
  void start();
  void accept();
  bool admit(const Connection& newcomer);
  Response refusal(int status) const;
};

// One connection, in Beast's do_x/on_x shape: handshake (TLS), then requests
// read, handled and answered in turn until the client or a limit ends it.
template <class Stream>
class Session final : public Connection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  // TLS: the context the connection is accepted with.
  Session(tcp::socket socket, std::shared_ptr<Server::Impl> server,
          std::shared_ptr<ssl::context> tls)
      : tls_(std::move(tls)), stream_(make_stream(std::move(socket), tls_)), deadline_(server->io),
        server_(std::move(server)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
    block_ = address_block(remote_);
    waiting_since_ = std::chrono::steady_clock::now();
  }

  const std::string& block() const override { return block_; }
  std::optional<std::chrono::steady_clock::time_point> waiting_since() const override {
    return answering_ ? std::nullopt : std::optional(waiting_since_);
  }
  bool trusted() const override { return trusted_; }
  void evict() override { finish(); }

  void run() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      arm(server_->settings.handshake_time);
      stream_.async_handshake([self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->finish();
        self->read_header();
      });
    } else {
      read_header();
    }
  }

  void close() override {
    disarm();
    stream_.close();
    if (auto h = std::move(stream_handle_)) h->mark_closed();
  }

  // A streamed response's chunk: queued, written in order.
  bool stream_write(std::string chunk) override {
    if (!stream_handle_) return false;
    if (stream_bytes_ + chunk.size() > stream_limit_) {
      finish();  // a client that does not read
      return false;
    }
    stream_bytes_ += chunk.size();
    stream_queue_.push_back(std::move(chunk));
    if (!stream_writing_) pump();
    return true;
  }
  std::size_t stream_waiting() const override { return stream_bytes_; }
  void end_stream() override {
    if (stream_handle_) finish();
  }

 private:
  static Stream make_stream(tcp::socket socket, const std::shared_ptr<ssl::context>& tls) {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      return Stream(std::move(socket), tls->native_handle());
    } else {
      return Stream(std::move(socket));
    }
  }

  // The time limit of what the connection does now; when it runs out, the
  // pending read or write fails and the connection is closed.
  // A limit that ran out just as the next one was set has its handler queued
  // already: the generation tells it that it is stale.
  void arm(std::chrono::steady_clock::duration limit) {
    deadline_.expires_after(limit);
    deadline_.async_wait(
        [weak = this->weak_from_this(), generation = ++deadline_generation_](beast::error_code ec) {
          if (ec) return;
          auto self = weak.lock();
          if (self && generation == self->deadline_generation_) self->stream_.abort();
        });
  }
  void disarm() {
    ++deadline_generation_;
    deadline_.cancel();
  }

  void read_header() {
    answering_ = false;
    waiting_since_ = std::chrono::steady_clock::now();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->settings.header_limit));
    parser_->body_limit(server_->settings.body_limit);
    request_started_.reset();
    request_bytes_ = 0;
    // Waiting for the next request (keep-alive idle) until its first byte.
    arm(server_->settings.idle_time);
    parse_request();
  }

  // The request, headers and body alike, read by the connection itself so
  // that every byte is seen as it arrives (Beast's own read waits for the
  // whole header): from its first byte, the whole request within
  // request_time and at min_body_rate after an allowance of
  // body_stall_time, no piece waiting body_stall_time. Headers or a body
  // that trickle are closed, not waited for.
  void parse_request() {
    beast::error_code ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const auto used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) return on_read_error(ec);
      if (used == 0) break;
    }
    if (parser_->is_done()) return dispatch();
    if (buffer_.size() >=
        server_->settings.header_limit + server_->settings.body_limit + 64 * 1024) {
      return on_read_error(
          http::error::header_limit);  // a parser that takes nothing more: refuse, never grow
    }
    const auto& st = server_->settings;
    if (request_started_) {
      // The request's deadline grows with what has arrived (as Apache's
      // mod_reqtimeout does): an allowance of body_stall_time, then a second
      // for each min_body_rate bytes, never beyond request_time. Judged by
      // the timer, not at each read, so a loop that was busy (its reads
      // handled late) does not count against a client.
      const auto now = std::chrono::steady_clock::now();
      const auto earned = std::chrono::milliseconds(request_bytes_ * 1000 /
                                                    std::max<std::size_t>(1, st.min_body_rate));
      const auto deadline = std::min(*request_started_ + st.request_time,
                                     *request_started_ + st.body_stall_time + earned);
      if (deadline <= now) return finish();
      arm(std::min<std::chrono::steady_clock::duration>(deadline - now, st.body_stall_time));
    }
    auto space = buffer_.prepare(16 * 1024);
    stream_.async_read_some(space,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->buffer_.commit(n);
                              if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
                                if (!self->parser_->got_some() && self->buffer_.size() == 0)
                                  return self->finish();
                                beast::error_code eof;
                                self->parser_->put_eof(eof);
                                return eof ? self->on_read_error(eof) : self->parse_request();
                              }
                              if (ec) return self->finish();
                              if (!self->request_started_)
                                self->request_started_ = std::chrono::steady_clock::now();
                              self->request_bytes_ += n;
                              self->parse_request();
                            });
  }

  void on_read_error(beast::error_code ec) {
    auto refuse = [this](int status) {
      keep_alive_ = false;
      linger_ = status == 413;
      write(server_->refusal(status), 11);
    };
    if (ec == http::error::body_limit) return refuse(413);
    if (ec == http::error::header_limit) return refuse(431);
    // What the client sent is not HTTP/1.1: say so. Anything else (idle,
    // gone, slow, cut mid-message): just close.
    const bool malformed =
        ec.category() == http::make_error_code(http::error::bad_version).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message;
    if (!malformed) return finish();
    refuse(400);
  }

  void dispatch() {
    auto& req = parser_->get();
    Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    auto q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) r.query = r.target.substr(q + 1);
    for (const auto& f : req)
      r.headers[lowercase(std::string(f.name_string()))] = std::string(f.value());
    r.body = std::move(req.body());
    r.remote_address = remote_;
    r.trust = [weak = this->weak_from_this()] {
      if (auto self = weak.lock()) self->trusted_ = true;
    };
    answering_ = true;
    keep_alive_ = req.keep_alive();
    const unsigned version = req.version();
    // A HEAD answer has the GET answer's headers and no body: a body would
    // be read as the start of the next response on a kept-alive connection.
    const bool head_only = req.method() == http::verb::head;
    disarm();  // the handler may take its time (database)
    auto answered = std::make_shared<bool>(false);
    auto reply = [self = this->shared_from_this(), version, head_only, answered](Response res) {
      if (*answered || self->server_->stopped) return;
      *answered = true;
      self->write(std::move(res), version, head_only);
    };
    // A handler that throws (a bug meeting a request) loses that request,
    // never the server: it is answered 500 unless it was answered already.
    try {
      server_->handler(std::move(r), reply);
    } catch (const std::exception& ex) {
      server_->log.error("A request's handler failed; it was answered 500.",
                         {{"reason", std::string(ex.what()).substr(0, 200)}});
      Response failure;
      if (server_->settings.refusal) {
        failure = server_->settings.refusal(500);
      } else {
        failure.body =
            R"({"error":"internal","hint":"The box could not answer this request; try again."})"
            "\n";
      }
      failure.status = 500;
      failure.close = true;
      reply(std::move(failure));
    }
  }

  template <class Body>
  void finish_headers(http::response<Body>& res, const Response& r) {
    res.set(http::field::server, "secbox");
    res.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : server_->settings.default_headers) res.set(k, v);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    if (r.close) keep_alive_ = false;
    res.keep_alive(keep_alive_);
  }

  // The header is serialized here and the body written as it is, in one
  // gather write: a cached body (the ban list) is never copied per request.
  void write(Response r, unsigned version, bool head_only = false) {
    arm(server_->settings.request_time * 3);
    const auto status = static_cast<http::status>(r.status);
    auto stream = std::move(r.stream);
    if (stream) keep_alive_ = false;  // the body ends when the connection does
    stream_limit_ = r.stream_backlog ? r.stream_backlog : server_->settings.stream_backlog;
    http::response<http::empty_body> res(status, version);
    finish_headers(res, r);
    auto body = r.shared_body ? std::move(r.shared_body)
                              : std::make_shared<const std::string>(std::move(r.body));
    const bool bodyless = r.status / 100 == 1 || r.status == 204 || r.status == 304;
    if (!bodyless && !stream) res.content_length(body->size());
    auto head = std::make_shared<std::string>();
    head->reserve(256);
    *head += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    *head += std::to_string(r.status);
    *head += ' ';
    *head += std::string(http::obsolete_reason(status));
    *head += "\r\n";
    for (const auto& f : res) {
      *head += std::string(f.name_string());
      *head += ": ";
      *head += std::string(f.value());
      *head += "\r\n";
    }
    *head += "\r\n";
    const bool keep_alive = res.keep_alive();
    if (stream) {
      boost::asio::async_write(stream_, boost::asio::buffer(*head),
                               [self = this->shared_from_this(), head, stream = std::move(stream),
                                head_only](beast::error_code ec, std::size_t) {
                                 if (ec || head_only || self->server_->stopped)
                                   return self->finish();
                                 self->start_stream(stream);
                               });
      return;
    }
    auto buffers = beast::buffers_cat(
        boost::asio::buffer(*head),
        boost::asio::buffer(bodyless || head_only ? std::string_view() : std::string_view(*body)));
    boost::asio::async_write(
        stream_, buffers,
        [self = this->shared_from_this(), head, body, keep_alive](
            beast::error_code ec, std::size_t) { self->after_write(ec, keep_alive); });
  }

  void start_stream(const std::function<void(std::shared_ptr<ResponseStream>)>& open) {
    disarm();
    stream_handle_ = std::make_shared<StreamHandle>(this->weak_from_this());
    open(stream_handle_);
  }

  void pump() {
    if (stream_queue_.empty()) {
      stream_writing_ = false;
      return disarm();
    }
    stream_writing_ = true;
    arm(server_->settings.stream_write_time);
    boost::asio::async_write(stream_, boost::asio::buffer(stream_queue_.front()),
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               if (ec || !self->stream_handle_) return self->finish();
                               self->stream_bytes_ -= self->stream_queue_.front().size();
                               self->stream_queue_.pop_front();
                               self->pump();
                             });
  }

  void after_write(beast::error_code ec, bool keep_alive) {
    if (!ec && linger_ && !server_->stopped) return start_linger();
    if (ec || !keep_alive || server_->stopped) return finish();
    read_header();
  }

  // After refusing a request whose body is still arriving: read and drop what
  // the client sends (at most 1 MiB, 2 s in all: a body that trickles does
  // not keep its slot) so that it can finish writing and read the refusal,
  // instead of meeting a reset.
  void start_linger() {
    arm(std::chrono::seconds(2));
    linger(1 << 20);
  }
  void linger(std::size_t budget) {
    stream_.async_read_some(asio::buffer(drain_), [self = this->shared_from_this(), budget](
                                                      beast::error_code ec, std::size_t n) {
      if (ec || n >= budget || self->server_->stopped) return self->finish();
      self->linger(budget - n);
    });
  }

  void finish() {
    close();
    server_->sessions.erase(this->shared_from_this());
  }

  std::shared_ptr<ssl::context> tls_;  // null for plain HTTP
  Stream stream_;
  asio::steady_timer deadline_;
  std::uint64_t deadline_generation_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Server::Impl> server_;
  std::string remote_;
  std::string block_;
  std::optional<std::chrono::steady_clock::time_point> request_started_;  // its first byte
  std::size_t request_bytes_ = 0;
  bool answering_ = false;  // a request handled or answered (or a stream open)
  bool trusted_ = false;
  std::chrono::steady_clock::time_point waiting_since_;
  bool keep_alive_ = true;
  bool linger_ = false;
  std::array<char, 16 * 1024> drain_{};
  std::shared_ptr<StreamHandle> stream_handle_;
  std::deque<std::string> stream_queue_;
  std::size_t stream_bytes_ = 0;
  std::size_t stream_limit_ = 0;
  bool stream_writing_ = false;
};

// Each keeps the handle alive through the call: closing runs on_closed,
// which may drop the caller's last reference to it.
bool StreamHandle::write(std::string chunk) {
  auto keep = shared_from_this();
  auto s = session_.lock();
  if (closed_ || !s) return false;
  return s->stream_write(std::move(chunk));
}

void StreamHandle::close() {
  auto keep = shared_from_this();
  if (auto s = session_.lock()) s->end_stream();
  mark_closed();
}

std::shared_ptr<ssl::context> Server::Impl::make_tls(const std::string& cert_pem,
                                                     const std::string& key_pem) {
  auto made = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = made->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) return nullptr;
  beast::error_code ec;
  made->use_certificate_chain(asio::buffer(cert_pem), ec);
  if (!ec) made->use_private_key(asio::buffer(key_pem), ssl::context::pem, ec);
  if (!ec && SSL_CTX_check_private_key(ctx) != 1) ec = asio::error::invalid_argument;
  if (ec) {
    log.error("The server's certificate or key cannot be used.", {{"reason", ec.message()}});
    return nullptr;
  }
  // SNI: a client asking for <name> or <label>.<name> gets the named
  // certificate. Handshakes run on the loop, as the setter does.
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  SSL_CTX_set_tlsext_servername_callback(
      ctx, +[](SSL* ssl, int*, void* arg) -> int {
        auto* self = static_cast<Server::Impl*>(arg);
        const char* asked = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        if (!asked || !self->named_tls || self->named.empty()) return SSL_TLSEXT_ERR_OK;
        const std::string host = lowercase(asked);
        const std::string& name = self->named;
        const bool under =
            host.size() > name.size() + 1 &&
            host.compare(host.size() - name.size(), name.size(), name) == 0 &&
            host[host.size() - name.size() - 1] == '.' &&
            host.find('.') == host.size() - name.size() - 1;  // one label: what *.<name> covers
        if (host == name || under) SSL_set_SSL_CTX(ssl, self->named_tls->native_handle());
        return SSL_TLSEXT_ERR_OK;
      });
  return made;
}

Response Server::Impl::refusal(int status) const {
  if (settings.refusal) return settings.refusal(status);
  Response r;
  r.status = status;
  r.body = status == 413 ? "{\"error\":\"body_too_large\",\"hint\":\"Send at most " +
                               std::to_string(settings.body_limit) + " bytes.\"}\n"
           : status == 431
               ? "{\"error\":\"headers_too_large\",\"hint\":\"Send smaller headers.\"}\n"
               : "{\"error\":\"bad_request\",\"hint\":\"The request is not valid HTTP/1.1.\"}\n";
  return r;
}

void Server::Impl::start() {
  if (!plain()) {
    tls = make_tls(settings.cert_pem, settings.key_pem);
    if (!tls) return;
  }
  if (auto listening = open_listener(acceptor, settings.bind_address, settings.port); !listening) {
    log.error(
        (settings.label.empty() ? std::string("The server") : settings.label) + " cannot listen.",
        {{"reason", listening.error().message}, {"port", settings.port}});
    return;
  }
  bound_port = acceptor.local_endpoint().port();
  if (!settings.label.empty()) log.info(settings.label + " ready.", {{"port", bound_port}});
  accept();
}

void Server::Impl::accept() {
  acceptor.async_accept(
      [self = this->shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (self->stopped || ec == asio::error::operation_aborted) return;
        if (!ec) {
          auto admit = [&](auto session) {
            if (self->admit(*session)) {
              self->sessions.insert(session);
              session->run();
            } else {
              session->close();
            }
          };
          if (self->tls) {
            admit(std::make_shared<Session<TlsStream>>(std::move(socket), self, self->tls));
          } else {
            admit(std::make_shared<Session<PlainStream>>(std::move(socket), self, nullptr));
          }
        }
        self->accept();
      });
}

// Within the per-address cap, and a slot free or made free by closing an
// anonymous connection that is waiting: idle, or still sending its request
// (slow headers, a trickling body). It is taken from the address holding the
// most such connections, the one waiting longest there: a flood from a few
// addresses gives up its own before a lone phone's new connection goes. A
// connection that has shown a valid session, or whose request is being
// answered, is never closed for a newcomer.
bool Server::Impl::admit(const Connection& newcomer) {
  const auto same =
      static_cast<std::size_t>(std::count_if(sessions.begin(), sessions.end(), [&](const auto& s) {
        return s->block() == newcomer.block();
      }));
  if (same >= settings.max_per_address) return false;
  if (sessions.size() < settings.max_connections) return true;
  // Anonymous waiting connections by address block: a phone's own session
  // and answers in flight do not count against it.
  std::map<std::string, std::size_t> waiting;
  for (const auto& s : sessions) {
    if (!s->trusted() && s->waiting_since()) ++waiting[s->block()];
  }
  std::shared_ptr<Connection> victim;
  std::size_t victim_count = 0;
  for (const auto& s : sessions) {
    if (s->trusted()) continue;
    auto since = s->waiting_since();
    if (!since) continue;
    const std::size_t count = waiting[s->block()];
    if (!victim || count > victim_count ||
        (count == victim_count && *since < *victim->waiting_since())) {
      victim = s;
      victim_count = count;
    }
  }
  if (!victim) return false;  // every slot is busy with a request
  victim->evict();
  return true;
}

Server::Server(asio::io_context& io, Settings settings, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(settings), std::move(handler))) {}

Server::~Server() { impl_->stopped = true; }

std::string_view Server::name() const { return impl_->settings.name; }

void Server::start() { impl_->start(); }

void Server::stop(std::function<void()> on_stopped) {
  impl_->stopped = true;
  beast::error_code ec;
  impl_->acceptor.close(ec);
  auto sessions = impl_->sessions;
  for (const auto& s : sessions) s->close();
  impl_->sessions.clear();
  asio::post(impl_->io, std::move(on_stopped));
}

bool Server::use_certificate(const std::string& cert_pem, const std::string& key_pem) {
  if (impl_->plain()) return false;
  auto made = impl_->make_tls(cert_pem, key_pem);
  if (!made) return false;
  impl_->tls = std::move(made);
  impl_->settings.cert_pem = cert_pem;
  impl_->settings.key_pem = key_pem;
  return true;
}

bool Server::use_named_certificate(const std::string& name, const std::string& chain_pem,
                                   const std::string& key_pem) {
  if (impl_->plain()) return false;
  if (name.empty()) {
    impl_->named.clear();
    impl_->named_tls.reset();
    return true;
  }
  auto made = impl_->make_tls(chain_pem, key_pem);
  if (!made) return false;
  impl_->named = lowercase(name);
  impl_->named_tls = std::move(made);
  return true;
}

int Server::port() const { return impl_->bound_port; }
std::size_t Server::connections() const { return impl_->sessions.size(); }

}  // namespace secbox::httpd
