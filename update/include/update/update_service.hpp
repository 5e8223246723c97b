#pragma once
// Software updates over the tunnel (cloud-protocol §7.6) and the daemon's
// part of the trial (docs/updates.md):
//  - update.apply: download (HTTPS, the tunnel's CA rules, size-capped,
//    resumed after a cut), verify (size, SHA-256, Ed25519 by the pinned key),
//    stage beside the running version, `ack`, then switch `current` and ask
//    the appliance to restart into it. A failure before the switch changes
//    nothing and is queued as `update_result` with its phase.
//  - At start: an attempt that a restart interrupted, and outcomes that
//    secbox-recover wrote (rollbacks), are queued as `update_result`, once.
//  - On trial: once the box has been welcomed (when it is paired) and has run
//    the trial time, the version becomes the known-good one, the contract
//    migrations run, secbox.env is kept as the known-good bundle, and
//    `update_result done` is queued.
// Whatever the new version does, the rollback does not depend on it: that is
// secbox-recover's (root, POSIX sh), run before every start and by a timer.
//
// Loop thread only; blocking work runs on its own worker. Owned by the
// appliance; attach()/detach() as the control plane's.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/component.hpp"
#include "common/result.hpp"
#include "update/verify.hpp"

namespace boost::asio {
class io_context;
}
namespace secbox::protocol {
class Router;
}

namespace secbox::update {

struct UpdateSettings {
  std::string root;             // the versions tree (VersionStore); "" or none there: updates unavailable
  std::string public_key_file;  // /etc/secbox/update.pub
  std::string ca_file;          // the tunnel's extra CA (CLOUD_CA_FILE)
  std::string env_file;         // secbox.env, kept as the known-good bundle
  std::string bundle_dir;       // <state>/known-good
  std::string running_version;  // running_version() below
  bool paired = false;          // a paired box must reach welcome to pass its trial
  std::chrono::seconds trial{120};
  std::chrono::seconds deadline{300};
  std::uint64_t max_bytes = kMaxUpdateBytes;
  int download_tries = 3;
  std::chrono::milliseconds retry_pause{2000};
};

enum class Permission { allowed, unavailable, forbidden };

struct UpdateHooks {
  // control.json's "update" section for "apply", and its sentence.
  std::function<std::pair<Permission, std::string>()> permission;
  // Queues update_result with this clientId; done(true) once it is committed.
  std::function<void(const std::string& client_id, nlohmann::json data, std::function<void(bool)> done)> queue_result;
  // Runs the contract migrations held back during the trial.
  std::function<void(std::function<void(Result<void>)>)> finish_migrations;
  // The switch is made: stop and start again (into the new `current`).
  std::function<void(const std::string& why)> restart;
};

// The version this process is: the name of its folder when it runs from
// <root>/versions/<v>/secbox, else the version it was built as.
std::string running_version(const std::string& root, const std::string& built_in);

// scripts/secbox-recover, as this binary carries it (secbox recover-script).
std::string_view recover_script();

// <root> when this binary runs from <root>/versions/<v>/secbox, else "".
std::string versions_root_of_this_binary();
// The versions tree: the configured one (SECBOX_VERSIONS_DIR), else the one
// this binary runs from.
std::string versions_root(const std::string& configured);

// Whether this start is the trial of the running version, so that the
// database holds back contract migrations (before the loop runs: a small read).
bool on_trial(const std::string& root, const std::string& running);

class UpdateService final : public Component {
 public:
  UpdateService(boost::asio::io_context& loop, UpdateSettings settings, UpdateHooks hooks);
  ~UpdateService() override;

  std::string_view name() const override { return "update"; }
  void start() override;  // after the queue is up
  void stop(std::function<void()> on_stopped) override;

  void attach(protocol::Router& router);
  void detach();
  void on_welcomed();

  bool busy() const;
  // The state at start has been read (update.apply is answered busy before).
  bool ready() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::update
