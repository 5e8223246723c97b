#pragma once
// Routes the cloud's messages to the components that registered their types
// (cloud-protocol §4.1). Unknown types are ignored (logged once per type at
// debug); malformed messages are answered with `error bad_message`; every
// request of a known type gets exactly one reply carrying `re`: a handler
// answers through its Reply, and a Reply dropped without an answer sends
// `error internal` so the cloud is never left waiting.
//
// Loop thread only. Owned by the tunnel session; handlers belong to the
// components that registered them and must outlive the dispatcher's use.
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/log.hpp"
#include "tunnel/envelope.hpp"

namespace secbox::tunnel {

// Sends one finished text frame; false when the tunnel is down.
using TextSender = std::function<bool(const std::string&)>;

// Makes the envelope's id and ts for messages the box originates.
class MessageIds {
 public:
  std::string next();

 private:
  std::uint64_t counter_ = 0;
};

class Reply {
 public:
  // Sends `type` (a result type, `ack`) with payload, re = the request's id.
  void send(const std::string& type, nlohmann::json payload = nlohmann::json::object());
  // Sends `error {code, message}`; code is one of §4.1's.
  void error(const std::string& code, const std::string& message);
  bool answered() const;
  const std::string& request_id() const;

 private:
  friend class Dispatcher;
  struct State;
  explicit Reply(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

class Dispatcher {
 public:
  using Request = std::function<void(const Envelope&, Reply)>;
  using Notice = std::function<void(const Envelope&)>;

  Dispatcher(TextSender sender, MessageIds& ids) : sender_(std::move(sender)), ids_(ids) {}

  // A request type: the handler must answer through its Reply (now or later),
  // or call release() for a message of the type that is not a request (a
  // snapshot chunk before the last).
  void on_request(const std::string& type, Request handler);
  // A message that is never answered (welcome, events.ack, keepalives).
  void on_notice(const std::string& type, Notice handler);

  // One text frame from the cloud.
  void dispatch(std::string_view text);

  // Sends a message the box originates (no re), or a reply with re.
  bool send(const std::string& type, nlohmann::json payload, std::optional<std::string> re = std::nullopt);

  // Marks a Reply as needing no answer.
  static void release(Reply& reply);

 private:
  TextSender sender_;
  MessageIds& ids_;
  std::map<std::string, Request> requests_;
  std::map<std::string, Notice> notices_;
  std::set<std::string> unknown_logged_;
  log::Logger log_{"tunnel"};
};

}  // namespace secbox::tunnel
