#pragma once
// A TLS server stream in which OpenSSL reads and writes the socket itself,
// through a small BIO over recv/send (MSG_NOSIGNAL), and the loop only waits
// for readiness when OpenSSL would block.
//
// Why not asio::ssl::stream: it runs OpenSSL against a memory BIO pair, so
// every record is copied into the pair and out again before the kernel sees
// it, and each 16 KiB record is one trip through Asio's composed operations.
// Serving the 783 KB ban list, perf put 13 % of the server's time in those
// copies and 12 % in Asio/Beast (bench/lan_bench.sh). Here a write
// of a large body is one loop of SSL_write calls until the socket is full.
//
// Enough of Asio's AsyncReadStream and AsyncWriteStream for Beast's HTTP
// reads and asio::async_write; one operation of each kind at a time, on the
// loop's thread. Completions never run inside the initiating call.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

namespace secbox::httpd {

class TlsStream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;
  using error_code = boost::system::error_code;

  // `ctx` is kept alive by the SSL object (OpenSSL counts its references), so
  // the server may swap its context (a renewed certificate) at any time.
  TlsStream(boost::asio::ip::tcp::socket socket, SSL_CTX* ctx);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  SSL* native_handle() { return ssl_; }
  // True while write_all has more records to send after the current one.
  bool more_to_write() const { return more_; }

  template <class Token>
  auto async_handshake(Token&& token) {
    return boost::asio::async_compose<Token, void(error_code)>(
        Op<Handshake, void>{this, Handshake{}}, token, socket_);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        Op<Read<MutableBuffers>, std::size_t>{this, Read<MutableBuffers>{buffers}}, token, socket_);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        Op<Write<ConstBuffers>, std::size_t>{this, Write<ConstBuffers>{buffers}}, token, socket_);
  }

  // Makes pending and later operations fail (a time limit ran out): the
  // socket is shut down, not closed, so its descriptor cannot be reused
  // under OpenSSL's feet.
  void abort();
  // Sends close_notify if the connection is still sound, then closes.
  void close();

 private:
  enum class Next { done, wait_read, wait_write };
  // After an SSL call that did not succeed: wait, or fail with `ec`.
  Next classify(int ret, error_code& ec);

  // One attempt of each operation; returns what SSL_* returned (1: done).
  struct Handshake {
    int attempt(TlsStream& s, std::size_t&) { return SSL_do_handshake(s.ssl_); }
  };
  template <class MutableBuffers>
  struct Read {
    MutableBuffers buffers;
    int attempt(TlsStream& s, std::size_t& n) {
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        boost::asio::mutable_buffer b = *it;
        if (b.size() > 0) return SSL_read_ex(s.ssl_, b.data(), b.size(), &n);
      }
      return 1;  // nothing asked, nothing read
    }
  };
  template <class ConstBuffers>
  struct Write {
    ConstBuffers buffers;
    int attempt(TlsStream& s, std::size_t& n) {
      // A small first buffer (an HTTP header) and more behind it: one record
      // of up to 16 KiB from the front of the sequence, not a tiny record
      // for the header alone. A retry builds the same bytes again.
      const std::size_t total = boost::asio::buffer_size(buffers);
      auto first = boost::asio::buffer_sequence_begin(buffers);
      while (first != boost::asio::buffer_sequence_end(buffers) &&
             boost::asio::const_buffer(*first).size() == 0) {
        ++first;
      }
      if (first == boost::asio::buffer_sequence_end(buffers)) return 1;
      boost::asio::const_buffer b = *first;
      if (b.size() < kRecord && total > b.size()) {
        s.staging_.resize(std::min(total, kRecord));
        boost::asio::buffer_copy(boost::asio::buffer(s.staging_), buffers);
        b = boost::asio::buffer(s.staging_);
      }
      return s.write_all(b, n);
    }
  };

  template <class Attempt, class Result>
  struct Op {
    TlsStream* s;
    Attempt attempt;
    bool waited = false;    // went through the loop at least once
    bool finished = false;  // the result is ready; posted to be delivered
    error_code result_ec{};
    std::size_t result_n = 0;

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (finished) return deliver(self);
      if (ec) return finish(self, ec, 0);
      if (s->broken_) return finish(self, boost::asio::error::operation_aborted, 0);
      std::size_t n = 0;
      ERR_clear_error();
      const int ret = attempt.attempt(*s, n);
      if (ret == 1) return finish(self, {}, n);
      error_code failure;
      switch (s->classify(ret, failure)) {
        case Next::wait_read:
          waited = true;
          return s->socket_.async_wait(boost::asio::ip::tcp::socket::wait_read, std::move(self));
        case Next::wait_write:
          waited = true;
          return s->socket_.async_wait(boost::asio::ip::tcp::socket::wait_write, std::move(self));
        case Next::done:
          return finish(self, failure, n);
      }
    }

    template <class Self>
    void finish(Self& self, error_code ec, std::size_t n) {
      result_ec = ec;
      result_n = n;
      finished = true;
      if (!waited) return boost::asio::post(s->socket_.get_executor(), std::move(self));
      deliver(self);
    }

    template <class Self>
    void deliver(Self& self) {
      if constexpr (std::is_void_v<Result>) {
        self.complete(result_ec);
      } else {
        self.complete(result_ec, result_n);
      }
    }
  };

  // SSL_write until `b` is sent or the socket is full; `n`: the bytes sent.
  int write_all(boost::asio::const_buffer b, std::size_t& n);

  static constexpr std::size_t kRecord = 16 * 1024;

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  bool broken_ = false;  // a fatal TLS or socket error, or abort(): no more SSL calls
  bool closed_ = false;
  bool more_ = false;
  std::vector<unsigned char> staging_;
};

}  // namespace secbox::httpd
