// secbox-cloudsim: a local cloud for demos and manual tests.
//   secbox-cloudsim --dir DIR [--port N] [--device ID --bootstrap TOKEN] [--script FILE]
// Prints one JSON line with its URLs and CA file, then reads commands on
// standard input: a JSON object is sent to the device as it is;
// "close CODE" closes the device's session; "down" stops listening and drops
// every connection (the internet is gone), "up" listens again on the same
// port with the same certificate; "events" prints the events the box
// sent up (by type and clientId); "await RE SECONDS" prints the first message
// the box sent with that `re` (a reply; one already received counts), or
// {"timeout":true}; "await-type TYPE SECONDS" the same by type; "update DIR
// [ID]" publishes the release in DIR (tools/release: made with the key
// DIR/update-key.pem) and sends update.apply for it (printing the message
// sent); "cut BYTES" makes later
// file downloads drop after BYTES (0: whole); "clear" forgets what arrived so
// far; "quit" exits. With standard input
// at its end (</dev/null) it serves until SIGINT or SIGTERM. --script names a
// file of JSON messages, one a line, sent to the box after every welcome.
// Tokens it issues are kept in DIR, so a restarted simulator still knows the box.
// --install-script FILE --release DIR serve the one-line install: install.sh
// at /install.sh (with this cloud and its update key filled in) and the
// release it installs. DIR/update.pub is the key a box pins,
// DIR/update-key.pem the one secbox-release signs with.
// --redirect NAME=URL answers GET /files/NAME with a 302 to URL.
// --lan-zone ZONE gives each box a name under ZONE in welcome.lan and
// answers its lan_cert.request with a chain from a real ACME server
// (Debian's pebble, started under DIR/acme; cloud-protocol §7.7); the root
// it chains to is "lanRoots" in the JSON line. Without pebble: no names.
// --publish NAME=PATH serves the file PATH at /files/NAME (a ban's photo);
// ${BASE_URL} in the script's messages is this cloud's https://host:port.
// --offer-update DIR sends update.apply for the release in DIR, once, after
// the first welcome of a box that runs another version (a demo).
#include <unistd.h>

#include <thread>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cloudsim/cloudsim.hpp"
#include "common/atomic_file.hpp"

namespace {

constexpr const char* kUsage =
    "usage: secbox-cloudsim --dir DIR [--port N] [--device ID --bootstrap TOKEN] [--script FILE]\n"
    "                       [--install-script FILE --release DIR] [--offer-update DIR] [--redirect "
    "NAME=URL]\n"
    "                       [--publish NAME=PATH] [--lan-zone ZONE]\n";

}  // namespace

int main(int argc, char** argv) {
  secbox::cloudsim::Options o;
  std::string device, bootstrap, script, install_script, binary, offer;
  std::vector<std::string> redirects;  // NAME=URL
  std::vector<std::string> published;  // NAME=PATH
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dir") {
      o.dir = next();
    } else if (a == "--port") {
      const auto v = next();
      char* end = nullptr;
      const long port = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || port < 0 || port > 65535) {
        std::cerr << "secbox-cloudsim: --port must be 0-65535\n";
        return 2;
      }
      o.port = static_cast<std::uint16_t>(port);
    } else if (a == "--device") {
      device = next();
    } else if (a == "--bootstrap") {
      bootstrap = next();
    } else if (a == "--script") {
      script = next();
    } else if (a == "--redirect") {
      redirects.push_back(next());
    } else if (a == "--lan-zone") {
      o.lan_zone = next();
    } else if (a == "--publish") {
      published.push_back(next());
    } else if (a == "--offer-update") {
      offer = next();
    } else if (a == "--install-script") {
      install_script = next();
    } else if (a == "--release") {
      binary = next();
    } else {
      std::cerr << kUsage;
      return 2;
    }
  }
  if (o.dir.empty()) {
    std::cerr << "secbox-cloudsim: --dir is required (the CA file is written there)\n";
    return 2;
  }
  std::vector<std::string> messages;
  if (!script.empty()) {
    std::ifstream in(script);
    if (!in) {
      std::cerr << "secbox-cloudsim: cannot read the script " << script << "\n";
      return 2;
    }
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.empty() || line[0] == '#') continue;
      if (!nlohmann::json::accept(line)) {
        std::cerr << "secbox-cloudsim: " << script << ":" << n << " is not one JSON message\n";
        return 2;
      }
      messages.push_back(line);
    }
  }
  secbox::cloudsim::CloudSim sim(o);
  if (!device.empty() && !bootstrap.empty()) sim.add_bootstrap(device, bootstrap);
  for (auto& m : messages) {
    for (std::size_t at; (at = m.find("${BASE_URL}")) != std::string::npos;)
      m.replace(at, 11, sim.base_url());
  }
  sim.set_after_welcome(std::move(messages));
  if (!install_script.empty() || !binary.empty()) {
    if (install_script.empty() || binary.empty()) {
      std::cerr << "secbox-cloudsim: --install-script and --release go together\n";
      return 2;
    }
    try {
      sim.serve_install(install_script, binary);
    } catch (const std::exception& e) {
      std::cerr << "secbox-cloudsim: " << e.what() << "\n";
      return 2;
    }
  }
  for (const auto& r : redirects) {
    const auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "secbox-cloudsim: --redirect NAME=URL\n";
      return 2;
    }
    sim.redirect(r.substr(0, eq), r.substr(eq + 1));
  }
  for (const auto& p : published) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || ::access(p.c_str() + eq + 1, R_OK) != 0) {
      std::cerr << "secbox-cloudsim: --publish NAME=PATH, with a file PATH that can be read\n";
      return 2;
    }
    sim.publish(p.substr(0, eq), p.substr(eq + 1));
  }
  nlohmann::json ready{{"baseUrl", sim.base_url()},
                       {"gatewayUrl", sim.gateway_url()},
                       {"caFile", sim.ca_file()},
                       {"port", sim.port()},
                       {"updateKey", sim.update_public_key_file()},
                       {"updateSigningKey", sim.update_private_key_file()},
                       {"lanRoots", sim.lan_roots_file()}};
  std::cout << ready.dump() << std::endl;
  if (!offer.empty()) {
    std::string version;
    if (auto m = secbox::read_file(offer + "/manifest.json", 4096)) {
      version = nlohmann::json::parse(m.value(), nullptr, false).value("version", "");
    }
    if (version.empty()) {
      std::cerr << "secbox-cloudsim: --offer-update DIR: no release in " << offer << "\n";
      return 2;
    }
    std::thread([&sim, file = offer, version] {
      for (;;) {
        auto hello = sim.wait_for(
            [](const secbox::cloudsim::Received& r) {
              return !r.is_binary && r.message.is_object() &&
                     r.message.value("type", "") == "hello";
            },
            std::chrono::hours(1));
        if (!hello) continue;
        if (hello->message["payload"].value("version", "") == version) return;
        std::this_thread::sleep_for(
            std::chrono::seconds(2));  // after the welcome and the snapshots
        try {
          nlohmann::json msg{{"v", 1},
                             {"type", "update.apply"},
                             {"id", "offer-1"},
                             {"ts", "2026-12-06T00:00:00Z"},
                             {"payload", sim.update_payload(file)}};
          std::cerr << "secbox-cloudsim: offering version " << version << ": "
                    << (sim.send_text(msg.dump()) ? "sent" : "no device connected") << std::endl;
        } catch (const std::exception& e) {
          std::cerr << "secbox-cloudsim: cannot offer " << file << ": " << e.what() << std::endl;
        }
        return;
      }
    }).detach();
  }
  std::string line;
  int updates = 0;
  while (std::getline(std::cin, line)) {
    if (line == "quit") return 0;
    if (line == "events") {  // what the box has sent up so far
      nlohmann::json types = nlohmann::json::object();
      for (const auto& r : sim.received()) {
        if (r.message.value("type", "") != "events.batch") continue;
        for (const auto& e : r.message["payload"].value("events", nlohmann::json::array())) {
          types[e.value("type", "?")][e.value("clientId", "?")] =
              e.value("data", nlohmann::json::object());
        }
      }
      std::cout << nlohmann::json{{"distinct", sim.distinct_events()},
                                  {"received", sim.events_received()},
                                  {"byType", types}}
                       .dump()
                << std::endl;
    } else if (line.rfind("await ", 0) == 0 || line.rfind("await-type ", 0) == 0) {
      const bool by_type = line.rfind("await-type ", 0) == 0;
      std::istringstream words(line.substr(by_type ? 11 : 6));
      std::string wanted;
      double seconds = 10;
      words >> wanted >> seconds;
      if (!(seconds > 0 && seconds <= 600)) seconds = 10;
      const char* field = by_type ? "type" : "re";
      auto got = sim.wait_for(
          [&](const secbox::cloudsim::Received& r) {
            if (r.is_binary || !r.message.is_object()) return false;
            auto it = r.message.find(field);
            return it != r.message.end() && it->is_string() && it->get<std::string>() == wanted;
          },
          std::chrono::milliseconds(static_cast<long>(seconds * 1000)));
      std::cout << (got ? got->message.dump() : std::string("{\"timeout\":true}")) << std::endl;
    } else if (line.rfind("update ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string file, id;
      words >> file >> id;
      if (id.empty()) id = "u-" + std::to_string(::getpid()) + "-" + std::to_string(++updates);
      try {
        nlohmann::json msg{{"v", 1},
                           {"type", "update.apply"},
                           {"id", id},
                           {"ts", "2026-12-06T00:00:00Z"},
                           {"payload", sim.update_payload(file)}};
        const bool sent = sim.send_text(msg.dump());
        std::cout << nlohmann::json{{"sent", sent}, {"message", msg}}.dump() << std::endl;
      } catch (const std::exception& e) {
        std::cout << nlohmann::json{{"sent", false}, {"error", e.what()}}.dump() << std::endl;
      }
    } else if (line == "clear") {  // forget what arrived so far (before the next step of a test)
      sim.clear_received();
      std::cout << "cleared" << std::endl;
    } else if (line.rfind("cut ", 0) == 0) {
      sim.set_download_cut(std::strtoull(line.c_str() + 4, nullptr, 10));
      std::cout << "cut" << std::endl;
    } else if (line == "down" || line == "up") {
      if (line == "down")
        sim.stop();
      else
        sim.start();
      std::cout << line << std::endl;
    } else if (line.rfind("close ", 0) == 0) {
      sim.close_device(static_cast<std::uint16_t>(std::atoi(line.c_str() + 6)));
    } else if (!line.empty() && line[0] == '{') {
      std::cout << (sim.send_text(line) ? "sent" : "no device connected") << std::endl;
    }
  }
  for (;;) ::pause();  // no more commands: serve until a signal ends the process
}
