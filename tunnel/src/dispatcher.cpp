#include "tunnel/dispatcher.hpp"

#include "common/time.hpp"

namespace secbox::tunnel {

struct Reply::State {
  std::string request_id;
  std::string request_type;
  TextSender sender;
  MessageIds* ids = nullptr;
  bool answered = false;

  void send(const Envelope& e) {
    answered = true;
    sender(serialize(e));
  }

  ~State() {
    if (answered) return;
    // The handler dropped its Reply: the cloud still gets its one answer.
    log::Logger("tunnel").error("A request was left unanswered; replying with an internal error.",
                                {{"type", request_type}, {"request_id", request_id}});
    send(make_error(ids->next(), format_rfc3339(std::chrono::system_clock::now()), request_id,
                    "internal", "the box did not answer this request"));
  }
};

std::string MessageIds::next() { return "b-" + std::to_string(++counter_); }

void Reply::send(const std::string& type, nlohmann::json payload) {
  if (state_->answered) return;  // exactly one reply
  Envelope e;
  e.type = type;
  e.id = state_->ids->next();
  e.ts = format_rfc3339(std::chrono::system_clock::now());
  e.re = state_->request_id;
  e.payload = std::move(payload);
  state_->send(e);
}

void Reply::error(const std::string& code, const std::string& message) {
  if (state_->answered) return;
  state_->send(make_error(state_->ids->next(), format_rfc3339(std::chrono::system_clock::now()),
                          state_->request_id, code, message));
}

bool Reply::answered() const { return state_->answered; }
const std::string& Reply::request_id() const { return state_->request_id; }

void Dispatcher::release(Reply& reply) { reply.state_->answered = true; }

void Dispatcher::on_request(const std::string& type, Request handler) {
  requests_[type] = std::move(handler);
}

void Dispatcher::on_notice(const std::string& type, Notice handler) {
  notices_[type] = std::move(handler);
}

bool Dispatcher::send(const std::string& type, nlohmann::json payload, std::optional<std::string> re) {
  Envelope e;
  e.type = type;
  e.id = ids_.next();
  e.ts = format_rfc3339(std::chrono::system_clock::now());
  e.re = std::move(re);
  e.payload = std::move(payload);
  return sender_(serialize(e));
}

void Dispatcher::dispatch(std::string_view text) {
  auto parsed = parse_envelope(text);
  if (auto* bad = std::get_if<Malformed>(&parsed)) {
    log_.debug("Answered a malformed message with bad_message.", {{"reason", bad->message}});
    sender_(serialize(make_error(ids_.next(), format_rfc3339(std::chrono::system_clock::now()),
                                 bad->re, "bad_message", bad->message)));
    return;
  }
  auto& e = std::get<Envelope>(parsed);
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
  state->sender = sender_;
  state->ids = &ids_;
  it->second(e, Reply(std::move(state)));
}

}  // namespace secbox::tunnel
