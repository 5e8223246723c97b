#include "protocol/dispatcher.hpp"

#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/time.hpp"
#include "protocol/envelope.hpp"
#include "protocol/shapes.hpp"

namespace secbox::protocol {

// What a Reply needs of its dispatcher, held weakly: a reply that comes
// after its session is gone (a database answer after a re-pairing) is
// dropped and logged, and never touches what the session owned.
struct ReplyLink {
  FrameSender sender;
  MessageIds* ids = nullptr;
};

struct Reply::State {
  std::string request_id;
  std::string request_type;
  std::weak_ptr<ReplyLink> link;
  bool answered = false;

  // Sends `e` with the next id of the box's messages.
  void send(Envelope e) {
    answered = true;
    auto l = link.lock();
    if (!l) {
      log::Logger("tunnel").warn(
          "A reply came after the session its request arrived on was gone; it is dropped.",
          {{"type", request_type}, {"request_id", request_id}});
      return;
    }
    e.id = l->ids->next();
    e.ts = format_rfc3339(std::chrono::system_clock::now());
    if (l->sender) l->sender(serialize(e));
  }

  ~State() {
    if (answered) return;
    if (link.expired()) return;  // nobody left to answer
    // The handler dropped its Reply: the cloud still gets its one answer.
    log::Logger("tunnel").error("A request was left unanswered; replying with an internal error.",
                                {{"type", request_type}, {"request_id", request_id}});
    send(error_message("", "", request_id, ErrorCode::internal,
                       "the box did not answer this request"));
  }
};

std::string MessageIds::next() { return "b-" + std::to_string(++counter_); }

void Reply::send(const std::string& type, nlohmann::json payload) {
  if (state_->answered) return;  // exactly one reply
  Envelope e;
  e.type = type;
  e.re = state_->request_id;
  e.payload = std::move(payload);
  state_->send(std::move(e));
}

void Reply::error(ErrorCode code, const std::string& message) {
  if (state_->answered) return;
  state_->send(error_message("", "", state_->request_id, code, message));
}

void Reply::error(const Error& e) { error(wire_code_for(e.code), e.message); }

void Reply::release() { state_->answered = true; }

bool Reply::answered() const { return state_->answered; }
const std::string& Reply::request_id() const { return state_->request_id; }

struct Dispatcher::Pending {
  explicit Pending(boost::asio::io_context& loop) : timer(loop) {}
  std::string type;
  Response on_response;
  boost::asio::steady_timer timer;
};

Dispatcher::Dispatcher(boost::asio::io_context& loop, MessageIds& ids)
    : Dispatcher(loop, Transport{}, ids) {}

Dispatcher::Dispatcher(boost::asio::io_context& loop, Transport transport, MessageIds& ids)
    : loop_(loop), ids_(ids) {
  set_transport(std::move(transport));
}

void Dispatcher::set_transport(Transport transport) {
  affinity_.assert_on_loop("Dispatcher::set_transport");
  transport_ = std::move(transport);
  link_ = std::make_shared<ReplyLink>(ReplyLink{transport_.text, &ids_});
}

void Dispatcher::clear_transport(const std::string& why) {
  session_ended();
  transport_ = Transport{};
  link_.reset();  // a reply still held is dropped when answered
  fail_pending(why);
}

void Dispatcher::on_session(SessionHooks hooks) { session_hooks_.push_back(std::move(hooks)); }

void Dispatcher::session_started(const nlohmann::json& welcome) {
  affinity_.assert_on_loop("Dispatcher::session_started");
  if (in_session_) return;
  in_session_ = true;
  // A hook may subscribe another: walk by index.
  for (std::size_t i = 0; i < session_hooks_.size(); ++i) {
    if (auto started = session_hooks_[i].started) started(welcome);
  }
}

void Dispatcher::session_ended() {
  affinity_.assert_on_loop("Dispatcher::session_ended");
  if (!in_session_) return;
  in_session_ = false;
  for (std::size_t i = 0; i < session_hooks_.size(); ++i) {
    if (auto ended = session_hooks_[i].ended) ended();
  }
}

Dispatcher::Dispatcher(boost::asio::io_context& loop, FrameSender text, MessageIds& ids)
    : Dispatcher(loop, Transport{std::move(text), nullptr, nullptr, nullptr}, ids) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::on_request(const std::string& type, Request handler, PayloadCheck check) {
  if (!requests_.emplace(type, Handler{std::move(handler), check}).second) {
    throw std::logic_error("two handlers for the request type " + type);
  }
}

std::optional<std::string> Dispatcher::request(const std::string& type, nlohmann::json payload,
                                               std::chrono::milliseconds timeout,
                                               Response on_response) {
  // Invalid UTF-8 is replaced, as serialize() does: a request never throws.
  return request_serialized(type,
                            payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            timeout, std::move(on_response));
}

std::optional<std::string> Dispatcher::request_serialized(const std::string& type,
                                                          std::string_view payload_json,
                                                          std::chrono::milliseconds timeout,
                                                          Response on_response) {
  affinity_.assert_on_loop("Dispatcher::request");
  Envelope e;
  e.type = type;
  e.id = ids_.next();
  e.ts = format_rfc3339(std::chrono::system_clock::now());
  if (!transport_.text || !transport_.text(serialize_with_payload(e, payload_json)))
    return std::nullopt;
  track(e.id, type, timeout, std::move(on_response));
  return e.id;
}

void Dispatcher::track(const std::string& id, const std::string& type,
                       std::chrono::milliseconds timeout, Response on_response) {
  auto p = std::make_unique<Pending>(loop_);
  p->type = type;
  p->on_response = std::move(on_response);
  p->timer.expires_after(timeout);
  // The timer dies with its Pending (or the dispatcher): an aborted wait must
  // not touch `this`.
  p->timer.async_wait([this, id](boost::system::error_code ec) {
    if (ec) return;
    complete(id, secbox::make_error(Errc::timeout, "no reply from the cloud in time"));
  });
  pending_.emplace(id, std::move(p));
}

void Dispatcher::complete(const std::string& id, Result<Envelope> result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  auto p = std::move(it->second);
  pending_.erase(it);
  p->timer.cancel();
  if (!result) {
    log_.debug("A request of the box's ended without its reply.",
               {{"type", p->type}, {"id", id}, {"reason", to_string(result.error().code)}});
  }
  p->on_response(std::move(result));
}

void Dispatcher::fail_pending(const std::string& why) {
  // Callbacks may send new requests; complete one id at a time.
  std::vector<std::string> ids;
  for (const auto& [id, p] : pending_) ids.push_back(id);
  for (const auto& id : ids) complete(id, secbox::make_error(Errc::disconnected, why));
}

std::size_t Dispatcher::pending() const { return pending_.size(); }

bool Dispatcher::send_binary(const BinaryHeader& header, std::string_view body) {
  if (!transport_.binary) return false;
  return transport_.binary(encode_binary(header, body));
}

bool Dispatcher::writable() const { return !transport_.writable || transport_.writable(); }

void Dispatcher::reconnect(const std::string& why) {
  if (transport_.reconnect) transport_.reconnect(why);
}

void Dispatcher::on_notice(const std::string& type, Notice handler) {
  if (!notices_.emplace(type, std::move(handler)).second) {
    throw std::logic_error("two handlers for the notice type " + type);
  }
}

bool Dispatcher::send(const std::string& type, nlohmann::json payload,
                      std::optional<std::string> re) {
  affinity_.assert_on_loop("Dispatcher::send");
  Envelope e;
  e.type = type;
  e.id = ids_.next();
  e.ts = format_rfc3339(std::chrono::system_clock::now());
  e.re = std::move(re);
  e.payload = std::move(payload);
  return transport_.text && transport_.text(serialize(e));
}

void Dispatcher::dispatch(std::string_view text) {
  affinity_.assert_on_loop("Dispatcher::dispatch");
  auto parsed = parse_envelope(text);
  if (auto* bad = std::get_if<Malformed>(&parsed)) {
    log_.debug("Answered a malformed message with bad_message.", {{"reason", bad->message}});
    if (transport_.text)
      transport_.text(
          serialize(error_message(ids_.next(), format_rfc3339(std::chrono::system_clock::now()),
                                  bad->re, ErrorCode::bad_message, bad->message)));
    return;
  }
  auto& e = std::get<Envelope>(parsed);
  // A handler that throws (a cloud bug meeting a box bug) loses that message,
  // never the process: it is logged, and a request still gets its one reply
  // (the dropped Reply answers `error internal`).
  try {
    route(e);
  } catch (const std::exception& ex) {
    log_.error("A message from the cloud could not be handled; it was dropped.",
               {{"type", e.type}, {"id", e.id}, {"reason", std::string(ex.what()).substr(0, 200)}});
  }
}

namespace {
// A string field of a cloud payload, or `fallback` when absent or not a string.
std::string string_or(const nlohmann::json& payload, const char* key, std::string fallback) {
  auto it = payload.find(key);
  return it != payload.end() && it->is_string() ? it->get<std::string>() : std::move(fallback);
}
}  // namespace

void Dispatcher::route(Envelope& e) {
  if (e.re && pending_.count(*e.re)) {
    const std::string id = *e.re;  // e is moved from below
    if (e.type == "error") {
      // The cloud's error, as far as it is one: a code that is not a string
      // is "internal", a message that is not a string is empty.
      auto code = string_or(e.payload, "code", "internal");
      auto message = string_or(e.payload, "message", "");
      return complete(id, secbox::make_error(Errc::refused,
                                             code.substr(0, 64) + ": " + message.substr(0, 1024)));
    }
    // A reply is checked against its type's shape as requests are: the
    // waiting component reads fields it can trust.
    if (const auto* shape = shapes::message(e.type)) {
      if (auto problem = shapes::check(*shape, e.payload)) {
        log_.warn("The cloud's reply does not fit its type; the box's request failed.",
                  {{"type", e.type}, {"problem", problem->describe()}});
        return complete(id, secbox::make_error(Errc::invalid, problem->describe()));
      }
    }
    return complete(id, std::move(e));
  }
  if (auto it = notices_.find(e.type); it != notices_.end()) {
    it->second(e);
    return;
  }
  auto it = requests_.find(e.type);
  if (it == requests_.end()) {
    if (unknown_logged_.size() < 1000 && unknown_logged_.insert(e.type).second) {
      log_.debug("Ignoring a message type this box does not know.", {{"type", e.type}});
    }
    return;
  }
  auto state = std::make_shared<Reply::State>();
  state->request_id = e.id;
  state->request_type = e.type;
  state->link = link_;
  Reply reply(std::move(state));
  if (it->second.check == PayloadCheck::shape) {
    if (const auto* shape = shapes::message(e.type)) {
      if (auto problem = shapes::check(*shape, e.payload)) {
        log_.info("Refused a request whose payload does not fit its type.",
                  {{"type", e.type}, {"problem", problem->describe()}});
        return reply.error(ErrorCode::invalid_args, problem->describe());
      }
    }
  }
  it->second.request(e, std::move(reply));
}

}  // namespace secbox::protocol
