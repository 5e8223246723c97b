#pragma once
// A blocking plain-HTTP/1.1 call to 127.0.0.1 for tests (Beast, its own
// io_context), bounded by a time limit. Run it on another thread (std::async)
// while the test's loop runs the server.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <string>

namespace secbox::testing {

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection refused or closed)
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase names
};

// Extra request headers; a "Host" here replaces the default 127.0.0.1.
using HttpHeaders = std::map<std::string, std::string>;

inline HttpAnswer http_call(int port, const std::string& method, const std::string& target,
                            const std::string& body, const std::string& content_type,
                            const HttpHeaders& headers,
                            std::chrono::seconds limit = std::chrono::seconds(20)) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  HttpAnswer out;
  beast::error_code ec;
  stream.expires_after(limit);
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                static_cast<unsigned short>(port)),
                 ec);
  if (ec) return out;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) return out;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 << 20);
  http::read(stream, buffer, parser, ec);
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

inline HttpAnswer http_call(int port, const std::string& method, const std::string& target,
                            const std::string& body = "", const std::string& content_type = "",
                            std::chrono::seconds limit = std::chrono::seconds(20)) {
  return http_call(port, method, target, body, content_type, {}, limit);
}

}  // namespace secbox::testing
