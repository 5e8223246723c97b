#pragma once
// A component's view of the cloud session for tests on a real loop: the real
// protocol::Dispatcher (the router a component registers on) over a transport
// that keeps every text frame the box sends, parsed.
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "protocol/dispatcher.hpp"

namespace secbox::testing {

struct CapturedSession {
  explicit CapturedSession(boost::asio::io_context& io)
      : dispatcher(
            io,
            [this](const std::string& text) {
              sent.push_back(nlohmann::json::parse(text));
              return true;
            },
            ids) {}

  // The cloud welcomes a connection (a new one: any session before it ends
  // first), or the connection closes.
  void welcome(const nlohmann::json& payload = nlohmann::json::object()) {
    dispatcher.session_ended();
    dispatcher.session_started(payload);
  }
  void close() { dispatcher.session_ended(); }

  // What the box sent with re = id (a request's replies), in order.
  std::vector<nlohmann::json> replies_to(const std::string& id) const {
    std::vector<nlohmann::json> out;
    for (const auto& m : sent) {
      if (m.value("re", "") == id) out.push_back(m);
    }
    return out;
  }

  std::vector<nlohmann::json> sent;
  protocol::MessageIds ids;
  protocol::Dispatcher dispatcher;
};

}  // namespace secbox::testing
