#pragma once
// The one HTTP/1.1 server core of the box, on the appliance's loop (Boost.Beast):
// the LAN server (HTTPS, :8443) and the pairing form (plain HTTP, :8080) are
// both this with their own settings and handler.
//   - TLS when Settings has a certificate: TLS 1.2 and 1.3 with AEAD ciphers
//     only, OpenSSL reading the socket itself (tls_stream.hpp); plain HTTP
//     without one.
//   - Keep-alive, HEAD, and limits on headers, bodies, connections (in all
//     and from one address) and time (handshake, request, idle, each write):
//     a slow or idle client is dropped, the server stays up.
// Routing is the handler's: it gets a plain request and answers once, on the
// loop, possibly later.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/component.hpp"

namespace secbox::httpd {

struct Request {
  std::string method;                          // "GET"
  std::string target;                          // as sent: path and query, percent-encoded
  std::string path;                            // target up to '?'
  std::string query;                           // after '?', may be empty
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  std::string remote_address;
  // The handler calls it when the request showed a valid session: the
  // connection is then never closed to make room for a newcomer.
  std::function<void()> trust;

  std::string header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A response that stays open (server-sent events): the server writes the
// status and headers (no length; the connection closes after it), then each
// chunk given to write(), in order. Loop thread only.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Queues a chunk. False when the stream is closed, or is closed now
  // because the client reads too slowly (Settings::stream_backlog).
  virtual bool write(std::string chunk) = 0;
  // Bytes queued and not yet written to the client.
  virtual std::size_t waiting() const = 0;
  virtual void close() = 0;
  virtual bool closed() const = 0;
  // Called once when the stream closes, whichever side closed it.
  virtual void on_closed(std::function<void()> callback) = 0;
};

struct Response {
  int status = 200;
  bool close = false;  // close the connection after this answer
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // A body kept elsewhere (a cache), sent without a copy; wins over `body`.
  std::shared_ptr<const std::string> shared_body;
  // Set: a streamed response (no body); called once the headers are written.
  std::function<void(std::shared_ptr<ResponseStream>)> stream;
  // What the stream may have waiting before it is closed (0: the server's
  // Settings::stream_backlog): live video needs more than events.
  std::size_t stream_backlog = 0;
};

using Reply = std::function<void(Response)>;
using Handler = std::function<void(Request, Reply)>;

struct Settings {
  std::string name = "http";  // its logs' component, and its Component name
  // What its logs call it: "<label> ready." once it listens ("LAN server
  // ready.", which scripts wait for). Empty: its owner says when it is ready.
  std::string label = "HTTP server";
  std::string bind_address = "::";
  int port = 8443;  // 0: any free port (tests)
  // Both set: HTTPS with this pair. Both empty: plain HTTP.
  std::string cert_pem;
  std::string key_pem;
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 64 * 1024;
  std::size_t max_connections = 64;
  // Connections from one address (an IPv6 /64 counts as one): a phone in the
  // parking lot cannot take every slot. When the server is full, an
  // anonymous connection that is waiting (for its handshake, or for its next
  // request and while that request arrives: slow headers, a trickling body)
  // is closed for the new one: from the address holding the most of them,
  // the one waiting longest there. One that showed a valid session
  // (Request::trust) or is being answered never is.
  std::size_t max_per_address = 16;
  std::chrono::seconds handshake_time{10};
  std::chrono::seconds request_time{10};  // from the first byte to the whole request
  // A request (headers and body) must arrive by body_stall_time after its
  // first byte plus a second for each min_body_rate bytes received (within
  // request_time), and no piece of it may wait body_stall_time: headers or
  // a body that trickle are closed instead of holding their slot.
  std::size_t min_body_rate = 1024;
  std::chrono::seconds body_stall_time{3};
  std::chrono::seconds idle_time{30};          // keep-alive: between requests
  std::size_t stream_backlog = 256 * 1024;     // bytes a streamed response may have waiting
  std::chrono::seconds stream_write_time{30};  // for each of its chunks to leave
  // The answer to a request the server refuses itself: 413 (body over the
  // limit), 431 (headers over it), 400 (not HTTP/1.1) or 500 (the handler
  // threw). Unset: a JSON {"error","hint"}.
  std::function<Response(int status)> refusal;
  // Headers every answer carries unless the handler's answer sets them.
  std::vector<std::pair<std::string, std::string>> default_headers{
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"}};
};

class Server final : public Component {
 public:
  Server(boost::asio::io_context& io, Settings settings, Handler handler);
  ~Server() override;

  std::string_view name() const override;
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  // A renewed certificate: connections accepted from now on present it, open
  // ones keep theirs. False (and the old one kept) when the pair is unusable
  // or the server is a plain one.
  bool use_certificate(const std::string& cert_pem, const std::string& key_pem);

  // A certificate for `name` and the names one label under it (a wildcard
  // *.<name>, cloud-protocol §7.7), presented from the next handshake on to
  // clients that ask for such a name (SNI); the others keep being answered
  // with the server's own certificate. Empty `name`: none any more. False
  // (and the old one kept) when the pair is unusable or the server is plain.
  bool use_named_certificate(const std::string& name, const std::string& chain_pem,
                             const std::string& key_pem);

  int port() const;
  std::size_t connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::httpd
