#include "tls_stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio/ssl/error.hpp>
#include <cerrno>

namespace secbox::httpd {
namespace {

using tcp = boost::asio::ip::tcp;

// The BIO reads the socket's descriptor at each call: once Asio has closed
// the socket it is -1, and a late call fails with EBADF instead of reaching
// whatever reused the number. send() with MSG_NOSIGNAL: a peer that left
// must not raise SIGPIPE in the daemon.
TlsStream& stream_of(BIO* b) { return *static_cast<TlsStream*>(BIO_get_data(b)); }

bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  TlsStream& s = stream_of(b);
  // MSG_MORE while more records of the same write follow: the kernel sends
  // them as one segment of up to 64 KiB instead of one 16 KiB record each
  // through the whole transmit path (on the ban list, that path was a third
  // of the server's time). The last record goes without it, and a socket
  // that fills pushes what it holds, so nothing waits for a later write.
  const int flags = MSG_NOSIGNAL | (s.more_to_write() ? MSG_MORE : 0);
  const ssize_t n = ::send(s.socket().native_handle(), data, static_cast<std::size_t>(len), flags);
  if (n < 0) {
    if (would_block(errno)) BIO_set_retry_write(b);
    return -1;
  }
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  const ssize_t n = ::recv(stream_of(b).socket().native_handle(), data,
                           static_cast<std::size_t>(len), MSG_NOSIGNAL);
  if (n == 0) BIO_set_flags(b, BIO_FLAGS_IN_EOF);
  if (n < 0) {
    if (would_block(errno)) BIO_set_retry_read(b);
    return -1;
  }
  return static_cast<int>(n);
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    default:
      return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* socket_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "secbox socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

}  // namespace

TlsStream::TlsStream(tcp::socket socket, SSL_CTX* ctx)
    : socket_(std::move(socket)), ssl_(SSL_new(ctx)) {
  error_code ec;
  socket_.non_blocking(true, ec);
  // A response's last record goes out at once, not after the client's
  // (delayed) ACK of the one before: Nagle's wait showed in the p99.
  if (!ec) socket_.set_option(tcp::no_delay(true), ec);
  if (!ssl_ || ec) {
    broken_ = true;
    return;
  }
  BIO* bio = BIO_new(socket_method());
  if (!bio) {
    broken_ = true;
    return;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // the same BIO both ways: one reference taken
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_read_ahead(ssl_, 1);  // a whole request in one recv, not a header and a body per record
  SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() {
  if (ssl_) SSL_free(ssl_);
}

TlsStream::Next TlsStream::classify(int ret, error_code& ec) {
  const int saved_errno = errno;
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Next::wait_read;
    case SSL_ERROR_WANT_WRITE:
      return Next::wait_write;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: a clean end
      ec = boost::asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      broken_ = true;
      ec = saved_errno != 0 ? error_code(saved_errno, boost::system::system_category())
                            : error_code(boost::asio::ssl::error::stream_truncated);
      break;
    case SSL_ERROR_SSL: {
      broken_ = true;
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ec = boost::asio::ssl::error::stream_truncated;
      } else {
        ec = error_code(static_cast<int>(e), boost::asio::error::get_ssl_category());
      }
      break;
    }
    default:
      broken_ = true;
      ec = boost::asio::error::fault;
      break;
  }
  ERR_clear_error();
  return Next::done;
}

int TlsStream::write_all(boost::asio::const_buffer b, std::size_t& n) {
  n = 0;
  const auto* p = static_cast<const unsigned char*>(b.data());
  while (n < b.size()) {
    std::size_t written = 0;
    more_ = b.size() - n > kRecord;  // each SSL_write_ex writes one record (partial writes)
    const int ret = SSL_write_ex(ssl_, p + n, b.size() - n, &written);
    more_ = false;
    if (ret != 1) {
      // Some sent: report those; the next call starts at the same bytes,
      // which is what OpenSSL needs to finish its pending record.
      if (n > 0) {
        ERR_clear_error();
        return 1;
      }
      return ret;
    }
    n += written;
  }
  return 1;
}

void TlsStream::abort() {
  broken_ = true;
  error_code ec;
  socket_.cancel(ec);
}

void TlsStream::close() {
  if (closed_) return;
  closed_ = true;
  if (!broken_ && ssl_ && SSL_is_init_finished(ssl_)) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // best effort: close_notify if the socket takes it now
    ERR_clear_error();
  }
  broken_ = true;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace secbox::httpd
