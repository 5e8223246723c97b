#pragma once
// A box paired with a cloud simulator, as its files say after pairing: the
// simulator (its own CA, in DIR/sim), etc/secbox.env naming it and trusting
// that CA, and a device token it issued in state/device.jwt.
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <string>

#include "cloudsim/cloudsim.hpp"
#include "temp_dir.hpp"

namespace secbox::testing {

inline std::unique_ptr<cloudsim::CloudSim> paired_simulator(
    const TempDir& dir, const std::string& device = "dev_7Q2x") {
  ::mkdir(dir.file("sim").c_str(), 0700);
  auto sim = std::make_unique<cloudsim::CloudSim>(
      cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  ::mkdir(dir.file("etc").c_str(), 0700);
  ::mkdir(dir.file("state").c_str(), 0700);
  dir.write("etc/secbox.env", "DEVICE_ID=" + device + "\nCLOUD_BASE_URL=" + sim->base_url() +
                                  "\nDEVICE_GATEWAY_URL=" + sim->gateway_url() +
                                  "\nCLOUD_CA_FILE=" + sim->ca_file() + "\n");
  dir.write("state/device.jwt", sim->issue_token(device) + "\n");
  return sim;
}

}  // namespace secbox::testing
