// The message dispatcher on sequences of cloud messages (cloud-protocol
// §4.1), one a line, with the box's own requests interleaved:
//   !hello   the box sends hello and waits (a short timeout)
//   !fail    the connection goes: every waiting request fails
//   !run     the loop runs what is due (held replies, timers)
//   $RE      in a line, becomes the id of the newest request still waiting,
//            so replies with every payload shape reach a waiting request
// Handlers for every request type answer at once, later, never (their Reply
// dropped) or throw, as buggy components might. Checked: no crash, and
// every request of a known type, and every malformed message with a usable
// id, is answered exactly once.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/log.hpp"
#include "protocol/dispatcher.hpp"
#include "protocol/envelope.hpp"
#include "protocol/shapes.hpp"

namespace {

using namespace secbox::protocol;

const std::vector<std::string>& request_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> t{"frigate.snapshot",
                               "frigate.stream.start",
                               "frigate.stream.stop",
                               "compose.snapshot",
                               "exec.run",
                               "exec.job",
                               "metrics.get",
                               "containers.list",
                               "containers.restart",
                               "units.status",
                               "units.restart",
                               "journal.tail",
                               "env.set",
                               "env.unset",
                               "jwt.rotate"};
    for (const auto& e : shapes::entities()) {
      t.push_back("snapshot." + e);
      t.push_back("delta." + e);
    }
    return t;
  }();
  return types;
}

// What a handler does, from the request's id: spread over the four ways.
unsigned behaviour_of(const std::string& id) {
  return static_cast<unsigned>(std::hash<std::string>{}(id) % 4);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  secbox::log::set_sink([](std::string_view) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  boost::asio::io_context loop;
  MessageIds ids;
  std::map<std::string, int> answered;  // re → replies the box sent
  bool up = true;
  Dispatcher d(
      loop,
      [&](const std::string& frame) {
        if (!up) return false;
        auto j = nlohmann::json::parse(frame, nullptr, false);
        if (!j.is_object()) std::abort();  // the box sends only envelopes
        if (auto re = j.find("re"); re != j.end()) answered[re->get<std::string>()]++;
        return true;
      },
      ids);
  for (const auto& type : request_types()) {
    const bool by_handler = type.rfind("snapshot.", 0) == 0 || type.rfind("delta.", 0) == 0;
    d.on_request(
        type,
        [&](const Envelope& e, Reply reply) {
          switch (behaviour_of(e.id)) {
            case 0:
              reply.send("ack");
              break;
            case 1:  // answered later, on the loop
              boost::asio::post(loop, [r = std::make_shared<Reply>(std::move(reply))] {
                r->error(ErrorCode::busy, "later");
              });
              break;
            case 2:  // dropped: the dispatcher's Reply answers internal
              break;
            default:  // a handler that trusts a field it should not
              (void)e.payload.at("a-field-no-message-has").get<std::string>();
              reply.send("ack");
          }
        },
        by_handler ? PayloadCheck::by_handler : PayloadCheck::shape);
  }
  d.on_notice("events.ack", [](const Envelope& e) {
    (void)e.payload.value("clientIds", nlohmann::json::array());
  });

  std::set<std::string> waiting;  // the box's requests not yet completed
  std::string newest_waiting = "b-1";
  std::map<std::string, int> expected;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  int lines = 0;
  while (start <= input.size() && ++lines <= 256) {
    auto end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    std::string line(input.substr(start, end - start));
    start = end + 1;
    if (line == "!hello") {
      auto mine = std::make_shared<std::string>();
      auto id =
          d.request("hello", {{"deviceId", "dev_1"}}, std::chrono::milliseconds(1),
                    [&waiting, mine](secbox::Result<Envelope> r) {
                      waiting.erase(*mine);
                      // A component reading its reply's fields.
                      if (r)
                        (void)r.value().payload.value("resync", nlohmann::json::array()).size();
                    });
      if (id) {
        *mine = *id;
        waiting.insert(*id);
        newest_waiting = *id;
      }
      continue;
    }
    if (line == "!fail") {
      d.fail_pending("gone");
      continue;
    }
    if (line == "!run") {
      loop.poll();
      continue;
    }
    for (std::size_t at; (at = line.find("$RE")) != std::string::npos;)
      line.replace(at, 3, newest_waiting);
    // What the dispatcher owes this message, by §4.1's rules.
    auto parsed = parse_envelope(line);
    if (auto* bad = std::get_if<Malformed>(&parsed)) {
      if (bad->re) expected[*bad->re]++;
    } else {
      const auto& e = std::get<Envelope>(parsed);
      const bool is_reply = e.re && waiting.count(*e.re) > 0;
      const auto& types = request_types();
      if (!is_reply && std::find(types.begin(), types.end(), e.type) != types.end())
        expected[e.id]++;
    }
    d.dispatch(line);
  }
  d.fail_pending("end");
  loop.run();
  if (answered != expected) std::abort();
  return 0;
}
