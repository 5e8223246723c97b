#pragma once
// Routes the cloud's messages to the components that registered their types
// (cloud-protocol §4.1). Unknown types are ignored (logged once per type at
// debug); malformed messages are answered with `error bad_message`; every
// request of a known type gets exactly one reply carrying `re`: a handler
// answers through its Reply, and a Reply dropped without an answer sends
// `error internal` so the cloud is never left waiting.
//
// Request payloads are checked against their shape (tunnel/shapes.hpp) before
// the handler runs: a payload that does not fit is answered `error
// invalid_args` naming the field. The box's own requests (hello, events.batch)
// go through request(), which matches the reply by `re` and times out.
//
// Loop thread only. Owned by the tunnel session; handlers belong to the
// components that registered them and must outlive the dispatcher's use.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/log.hpp"
#include "common/result.hpp"
#include "tunnel/envelope.hpp"

namespace boost::asio {
class io_context;
}

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

struct ReplyLink;  // dispatcher.cpp

// One request's answer. It holds its dispatcher weakly: once the session
// (and its dispatcher) is gone, an answer is dropped and logged.
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

// Whether the dispatcher checks a request's payload against its shape before
// the handler runs, or leaves it to the handler (snapshot chunks, whose errors
// are answered only at the last chunk).
enum class PayloadCheck { shape, by_handler };

class Dispatcher {
 public:
  using Request = std::function<void(const Envelope&, Reply)>;
  using Notice = std::function<void(const Envelope&)>;
  // The reply to one of the box's own requests: the reply's envelope, or an
  // Error whose code is the cloud's `error` code, "timeout" or "disconnected".
  using Response = std::function<void(Result<Envelope>)>;

  Dispatcher(boost::asio::io_context& loop, TextSender sender, MessageIds& ids);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // A request type: the handler must answer through its Reply (now or later),
  // or call release() for a message of the type that is not a request (a
  // snapshot chunk before the last).
  void on_request(const std::string& type, Request handler, PayloadCheck check = PayloadCheck::shape);
  // A message that is never answered (welcome, events.ack, keepalives).
  void on_notice(const std::string& type, Notice handler);

  // One text frame from the cloud.
  void dispatch(std::string_view text);

  // Sends a message the box originates (no re), or a reply with re.
  bool send(const std::string& type, nlohmann::json payload, std::optional<std::string> re = std::nullopt);

  // Sends one of the box's own requests and calls on_response exactly once,
  // on the loop: with the message whose `re` is its id, or with an error when
  // none came within `timeout` or the tunnel closed first (fail_pending).
  // Returns the request's id, or nullopt (and no call) when the tunnel is down.
  std::optional<std::string> request(const std::string& type, nlohmann::json payload,
                                     std::chrono::milliseconds timeout, Response on_response);
  // The same with the payload already serialized (see serialize_with_payload).
  std::optional<std::string> request_serialized(const std::string& type, std::string_view payload_json,
                                                std::chrono::milliseconds timeout, Response on_response);
  // Fails every request still waiting (the connection they were sent on is gone).
  void fail_pending(const std::string& why);
  std::size_t pending() const;

  // Marks a Reply as needing no answer.
  static void release(Reply& reply);

 private:
  struct Pending;
  struct Handler {
    Request request;
    PayloadCheck check;
  };
  void complete(const std::string& id, Result<Envelope> result);
  void track(const std::string& id, const std::string& type, std::chrono::milliseconds timeout,
             Response on_response);
  void route(Envelope& e);

  boost::asio::io_context& loop_;
  TextSender sender_;
  MessageIds& ids_;
  std::map<std::string, Handler> requests_;
  std::map<std::string, std::unique_ptr<Pending>> pending_;
  std::map<std::string, Notice> notices_;
  std::set<std::string> unknown_logged_;
  std::shared_ptr<ReplyLink> link_;  // replies hold it weakly
  log::Logger log_{"tunnel"};
};

}  // namespace secbox::tunnel
