#pragma once
// The Router over any transport of text and binary frames (cloud-protocol
// §4.1): routes the cloud's messages to the components that registered their
// types. Unknown types are ignored (logged once per type at debug); malformed
// messages are answered with `error bad_message`; every request of a known
// type gets exactly one reply carrying `re`.
//
// Request payloads are checked against their shape (protocol/shapes.hpp)
// before the handler runs: a payload that does not fit is answered `error
// invalid_args` naming the field. The box's own requests (hello, events.batch)
// are matched to their reply by `re` and time out.
//
// The transport underneath is swapped, not the dispatcher: the appliance
// owns one for the box's whole life, and the cloud session sets its
// transport when it is made and clears it when it stops (a re-pairing is a
// clear and a set). With no transport, sends fail and requests are refused.
//
// Loop thread only. Owned by the appliance or a test.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/lifetime.hpp"
#include "common/log.hpp"
#include "protocol/router.hpp"

namespace boost::asio {
class io_context;
}

namespace secbox::protocol {

// Sends one finished frame; false when the transport is down.
using FrameSender = std::function<bool(const std::string&)>;

// How the dispatcher's frames travel.
struct Transport {
  FrameSender text;
  FrameSender binary;                                 // null: binary frames refused
  std::function<bool()> writable;                     // null: always writable
  std::function<void(const std::string&)> reconnect;  // null: nothing to restart
};

// Makes the envelope's id for messages the box originates.
class MessageIds {
 public:
  std::string next();

 private:
  std::uint64_t counter_ = 0;
};

class Dispatcher final : public Router {
 public:
  // No transport yet (set_transport).
  Dispatcher(boost::asio::io_context& loop, MessageIds& ids);
  Dispatcher(boost::asio::io_context& loop, Transport transport, MessageIds& ids);
  // Text frames only (tests).
  Dispatcher(boost::asio::io_context& loop, FrameSender text, MessageIds& ids);
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  using Router::on_request;
  using Router::send;
  void on_request(const std::string& type, Request handler, PayloadCheck check) override;
  void on_notice(const std::string& type, Notice handler) override;
  bool send(const std::string& type, nlohmann::json payload,
            std::optional<std::string> re) override;
  bool send_binary(const BinaryHeader& header, std::string_view body) override;
  std::optional<std::string> request(const std::string& type, nlohmann::json payload,
                                     std::chrono::milliseconds timeout,
                                     Response on_response) override;
  std::optional<std::string> request_serialized(const std::string& type,
                                                std::string_view payload_json,
                                                std::chrono::milliseconds timeout,
                                                Response on_response) override;
  void on_session(SessionHooks hooks) override;
  bool in_session() const override { return in_session_; }
  bool writable() const override;
  void reconnect(const std::string& why) override;

  // The transport's owner (tunnel::CloudSession, a test).
  // A new way out; replies to requests that came over the one before are
  // dropped (their session is gone).
  void set_transport(Transport transport);
  // The way out is gone: the session ends, the box's requests fail, replies
  // still held are dropped when answered.
  void clear_transport(const std::string& why);
  bool has_transport() const { return static_cast<bool>(transport_.text); }
  // The cloud welcomed this connection / the connection closed. An end with
  // no session started is ignored, as is a second start.
  void session_started(const nlohmann::json& welcome);
  void session_ended();

  // One text frame from the cloud.
  void dispatch(std::string_view text);
  // Fails every request still waiting (the connection they were sent on is gone).
  void fail_pending(const std::string& why);
  std::size_t pending() const;

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
  Transport transport_;
  MessageIds& ids_;
  std::map<std::string, Handler> requests_;
  std::map<std::string, std::unique_ptr<Pending>> pending_;
  std::map<std::string, Notice> notices_;
  std::set<std::string> unknown_logged_;
  std::shared_ptr<ReplyLink> link_;  // replies hold it weakly; one a transport
  std::vector<SessionHooks> session_hooks_;
  bool in_session_ = false;
  LoopAffinity affinity_;
  log::Logger log_{"tunnel"};
};

}  // namespace secbox::protocol
