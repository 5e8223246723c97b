#pragma once
// What a component sees of the cloud session (cloud-protocol §4): it
// registers the request and notice types it handles, sends messages and its
// own requests, and answers each request through its Reply. How the bytes
// travel (the WSS tunnel, a test's capture) is the implementation's business:
// protocol::Dispatcher over a Transport, which tunnel::CloudSession wires to
// websocketpp.
//
// Loop thread only. The appliance owns one router for the box's whole life;
// components register their types once, when they are made, and hear each
// session's start and end through on_session(). The router outlives them.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "protocol/envelope.hpp"
#include "protocol/errors.hpp"

namespace secbox::protocol {

struct ReplyLink;  // dispatcher.cpp

// One request's answer: exactly one reply goes back for it. It holds its
// session weakly: once the session is gone, an answer is dropped and logged
// (never a use-after-free); a Reply dropped unanswered while the session
// lives sends `error internal`, so the cloud is never left waiting.
class Reply {
 public:
  // Sends `type` (a result type, `ack`) with payload, re = the request's id.
  void send(const std::string& type, nlohmann::json payload = nlohmann::json::object());
  // Sends `error {code, message}`.
  void error(ErrorCode code, const std::string& message);
  // Sends a module's Error: its code as wire_code_for maps it, its message
  // as it is.
  void error(const Error& e);
  // Marks the request as needing no answer (a snapshot chunk before the last,
  // a request answered by a binary frame).
  void release();
  bool answered() const;
  const std::string& request_id() const;

 private:
  friend class Dispatcher;
  struct State;
  explicit Reply(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// Whether the router checks a request's payload against its shape before
// the handler runs, or leaves it to the handler (snapshot chunks, whose errors
// are answered only at the last chunk).
enum class PayloadCheck { shape, by_handler };

class Router {
 public:
  using Request = std::function<void(const Envelope&, Reply)>;
  using Notice = std::function<void(const Envelope&)>;
  // The reply to one of the box's own requests: the reply's envelope, or an
  // Error: refused (the cloud's `error`; the message is "<its code>: <its
  // message>"), invalid (a reply that fails its shape), timeout or
  // disconnected.
  using Response = std::function<void(Result<Envelope>)>;

  virtual ~Router() = default;

  // A request type: the handler answers through its Reply (now or later), or
  // releases it for a message of the type that is not a request. One
  // handler a type: a second is a wiring error (std::logic_error), never a
  // silent replacement (which of two handlers answered used to depend on
  // which component attached last).
  virtual void on_request(const std::string& type, Request handler, PayloadCheck check) = 0;
  void on_request(const std::string& type, Request handler) {
    on_request(type, std::move(handler), PayloadCheck::shape);
  }
  // A message that is never answered (welcome, events.ack, keepalives). One
  // handler a type, as for requests.
  virtual void on_notice(const std::string& type, Notice handler) = 0;

  // Sends a message the box originates (no re), or a later message for a
  // request (re = its id). False when the session is down.
  virtual bool send(const std::string& type, nlohmann::json payload,
                    std::optional<std::string> re) = 0;
  bool send(const std::string& type, nlohmann::json payload) {
    return send(type, std::move(payload), std::nullopt);
  }
  // One binary frame (§4.1); false when down, refused or too large.
  virtual bool send_binary(const BinaryHeader& header, std::string_view body) = 0;

  // Sends one of the box's own requests and calls on_response exactly once,
  // on the loop: with the message whose `re` is its id, or with an error when
  // none came within `timeout` or the session closed first. Returns the
  // request's id, or nullopt (and no call) when the session is down.
  virtual std::optional<std::string> request(const std::string& type, nlohmann::json payload,
                                             std::chrono::milliseconds timeout,
                                             Response on_response) = 0;
  // The same with the payload already serialized (a JSON object's text; see
  // serialize_with_payload).
  virtual std::optional<std::string> request_serialized(const std::string& type,
                                                        std::string_view payload_json,
                                                        std::chrono::milliseconds timeout,
                                                        Response on_response) = 0;

  // What a component hears of the sessions underneath. A session starts when
  // the cloud welcomes a connection (`started` gets welcome's payload) and
  // ends when that connection closes or its transport goes (stopped, or
  // swapped by a re-pairing). Any number of components listen; each hears
  // in the order they subscribed. Either hook may be empty.
  struct SessionHooks {
    std::function<void(const nlohmann::json& welcome)> started;
    std::function<void()> ended;
  };
  virtual void on_session(SessionHooks hooks) = 0;
  // Between a session's start and its end.
  virtual bool in_session() const = 0;

  // Whether the session takes more bytes now (false under backpressure).
  virtual bool writable() const = 0;
  // Starts the connection over (the peer stopped answering what it was sent).
  virtual void reconnect(const std::string& why) = 0;
};

}  // namespace secbox::protocol
