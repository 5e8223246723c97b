#pragma once
// The daemon (`secbox run`): one io_context on the calling thread, a small
// worker pool for blocking work, and the components started in dependency
// order and stopped in reverse. SIGTERM/SIGINT stop it gracefully (the process
// is gone within 5 s: past 4.5 s it exits anyway); SIGHUP re-reads the config.
// Construct and run on the main thread; run() returns the exit code.
#include <memory>

#include "appliance/config.hpp"

namespace secbox::appliance {

class App {
 public:
  explicit App(Config config);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Applies SECBOX_ENV and SECBOX_LOG_LEVEL to the logger.
void configure_logging(const Config& config);

}  // namespace secbox::appliance
