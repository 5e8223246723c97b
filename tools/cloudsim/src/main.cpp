// secbox-cloudsim: a local cloud for demos and manual tests.
//   secbox-cloudsim --dir DIR [--port N] [--device ID --bootstrap TOKEN]
// Prints one JSON line with its URLs and CA file, then reads commands on
// standard input: a JSON object is sent to the device as it is;
// "close CODE" closes the device's session; "quit" exits.
#include <csignal>
#include <iostream>
#include <string>

#include "cloudsim/cloudsim.hpp"

int main(int argc, char** argv) {
  secbox::cloudsim::Options o;
  std::string device, bootstrap;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dir") {
      o.dir = next();
    } else if (a == "--port") {
      o.port = static_cast<std::uint16_t>(std::stoi(next()));
    } else if (a == "--device") {
      device = next();
    } else if (a == "--bootstrap") {
      bootstrap = next();
    } else {
      std::cerr << "usage: secbox-cloudsim --dir DIR [--port N] [--device ID --bootstrap TOKEN]\n";
      return 2;
    }
  }
  if (o.dir.empty()) {
    std::cerr << "secbox-cloudsim: --dir is required (the CA file is written there)\n";
    return 2;
  }
  secbox::cloudsim::CloudSim sim(o);
  if (!device.empty() && !bootstrap.empty()) sim.add_bootstrap(device, bootstrap);
  nlohmann::json ready{{"baseUrl", sim.base_url()}, {"gatewayUrl", sim.gateway_url()},
                       {"caFile", sim.ca_file()}, {"port", sim.port()}};
  std::cout << ready.dump() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "quit") break;
    if (line.rfind("close ", 0) == 0) {
      sim.close_device(static_cast<std::uint16_t>(std::stoi(line.substr(6))));
    } else if (!line.empty() && line[0] == '{') {
      std::cout << (sim.send_text(line) ? "sent" : "no device connected") << std::endl;
    }
  }
  return 0;
}
