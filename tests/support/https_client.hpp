#pragma once
// A blocking HTTPS/1.1 client for tests (Beast over OpenSSL, its own
// io_context): one connection, any number of requests on it, TLS versions
// and ciphers chosen by the test, every step bounded in time. Run it on
// another thread while the test's loop runs the server.
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <map>
#include <string>

namespace secbox::testing {

struct HttpsAnswer {
  int status = 0;  // 0: no answer (handshake refused, connection closed)
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase names
};

struct TlsChoice {
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string tls12_ciphers;  // empty: OpenSSL's default
  std::string server_name;    // sent as SNI when not empty
};

class HttpsClient {
 public:
  // source: the local address to connect from ("127.0.0.2": another LAN
  // client as far as the server can tell).
  explicit HttpsClient(int port, TlsChoice tls = {},
                       std::chrono::seconds limit = std::chrono::seconds(10),
                       const std::string& source = "")
      : ctx_(boost::asio::ssl::context::tls_client), stream_(io_, ctx_), limit_(limit) {
    // On the connection itself: the stream made it from the context already.
    SSL* ssl = stream_.native_handle();
    SSL_set_security_level(ssl, 0);  // let a test offer what a server must refuse
    SSL_set_min_proto_version(ssl, tls.min_version);
    SSL_set_max_proto_version(ssl, tls.max_version);
    if (!tls.tls12_ciphers.empty()) SSL_set_cipher_list(ssl, tls.tls12_ciphers.c_str());
    SSL_set_verify(ssl, SSL_VERIFY_NONE,
                   nullptr);  // self-signed; the fingerprint is checked elsewhere
    if (!tls.server_name.empty()) SSL_set_tlsext_host_name(ssl, tls.server_name.c_str());
    boost::beast::error_code ec;
    auto& tcp = boost::beast::get_lowest_layer(stream_);
    tcp.expires_after(limit_);
    if (!source.empty()) {
      tcp.socket().open(boost::asio::ip::tcp::v4(), ec);
      if (!ec) tcp.socket().bind({boost::asio::ip::make_address(source), 0}, ec);
      if (ec) return;
    }
    tcp.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)},
                ec);
    if (ec) return;
    stream_.handshake(boost::asio::ssl::stream_base::client, ec);
    connected_ = !ec;
    if (connected_) version_ = SSL_get_version(stream_.native_handle());
  }

  bool connected() const { return connected_; }
  const std::string& tls_version() const { return version_; }
  SSL* native() { return stream_.native_handle(); }
  // The certificate the server presented, as PEM ("" when none).
  std::string peer_certificate_pem() {
    std::string pem;
    X509* cert = SSL_get1_peer_certificate(stream_.native_handle());
    if (!cert) return pem;
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio && PEM_write_bio_X509(bio, cert) == 1) {
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      pem.assign(data, static_cast<std::size_t>(n));
    }
    BIO_free(bio);
    X509_free(cert);
    return pem;
  }

  HttpsAnswer call(const std::string& method, const std::string& target,
                   const std::string& body = "",
                   const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    HttpsAnswer out;
    if (!connected_) return out;
    boost::beast::get_lowest_layer(stream_).expires_after(limit_);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    boost::beast::error_code ec;
    http::write(stream_, req, ec);
    if (ec) return out;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream_, buffer_, parser, ec);
    if (ec) return out;
    const auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    return out;
  }

  // Raw bytes on the TLS stream (slow clients); false once the server closed.
  bool send_raw(const std::string& bytes) {
    boost::beast::error_code ec;
    boost::beast::get_lowest_layer(stream_).expires_after(limit_);
    boost::asio::write(stream_, boost::asio::buffer(bytes), ec);
    return !ec;
  }
  // Every byte until the server closes the connection (ask it to with
  // Connection: close: `wait` bounds only asynchronous reads).
  std::string read_raw(std::chrono::milliseconds wait) {
    std::string out;
    boost::beast::get_lowest_layer(stream_).expires_after(wait);
    char buf[4096];
    for (;;) {
      boost::beast::error_code ec;
      auto n = stream_.read_some(boost::asio::buffer(buf), ec);
      out.append(buf, n);
      if (ec) return out;
    }
  }
  // A streamed response (server-sent events): reads until `needle` has
  // arrived, the wait ends or the server closes, and returns what came up to
  // and including the needle (everything read, when it did not come); the
  // rest is kept for the next call. closed() says whether the server closed.
  std::string read_until(const std::string& needle, std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    boost::beast::get_lowest_layer(stream_).expires_never();
    while (pending_.find(needle) == std::string::npos && !closed_) {
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) break;
      bool done = false;
      boost::beast::error_code ec;
      std::size_t n = 0;
      char buf[4096];
      stream_.async_read_some(boost::asio::buffer(buf),
                              [&](boost::beast::error_code e, std::size_t got) {
                                ec = e;
                                n = got;
                                done = true;
                              });
      io_.restart();
      io_.run_for(left);
      if (!done) {  // the wait ended first: give the read up
        boost::beast::get_lowest_layer(stream_).cancel();
        io_.restart();
        io_.run();
        pending_.append(buf, n);
        break;
      }
      pending_.append(buf, n);
      if (ec) closed_ = true;
    }
    const auto at = pending_.find(needle);
    std::string out = at == std::string::npos ? pending_ : pending_.substr(0, at + needle.size());
    pending_.erase(0, out.size());
    return out;
  }
  bool closed() const { return closed_; }

  // Whether the server closed the connection within `wait`.
  bool closed_within(std::chrono::seconds wait) {
    boost::beast::error_code ec;
    boost::beast::get_lowest_layer(stream_).expires_after(wait);
    char c;
    stream_.read_some(boost::asio::buffer(&c, 1), ec);
    return ec && ec != boost::beast::error::timeout;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ssl::context ctx_;
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
  std::chrono::seconds limit_;
  bool connected_ = false;
  std::string version_;
  std::string pending_;  // read_until's bytes beyond its needle
  bool closed_ = false;
};

}  // namespace secbox::testing
