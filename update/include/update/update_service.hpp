#pragma once
// Software updates over the tunnel (cloud-protocol §7.6) and the daemon's
// part of the trial (docs/updates.md):
//  - update.apply: the signed manifest judged before anything is fetched
//    (update/manifest.hpp), the bundle downloaded (HTTPS, the tunnel's CA
//    rules, capped at the manifest's size, resumed after a cut), checked
//    (size, SHA-256), unpacked beside the running version and its daemon's
//    built-in version compared with the manifest's, `ack`, then `current`
//    switched and the appliance asked to restart into it. A failure before the switch changes
//    nothing and is queued as `update_result` with its phase.
//  - At start: an attempt that a restart interrupted, and outcomes that
//    secbox-recover wrote (rollbacks), are queued as `update_result`, once.
//  - On trial: once the box has been welcomed (when it is paired) and has run
//    the trial time, and before its deadline, the version becomes the
//    known-good one (under the lock secbox-recover takes, so a commit and a
//    rollback never interleave) and its counter the box's; then the contract
//    migrations run, secbox.env is kept as the known-good bundle, and
//    `update_result done` is queued.
// Whatever the new version does, the rollback does not depend on it: that is
// secbox-recover's (root, POSIX sh), run before every start and by a timer.
//
// Loop thread only; blocking work runs on its own worker. Owned by the
// appliance; it registers update.apply on the router when made, and a
// welcome (Router::on_session) is what lets a trial commit.
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

namespace secbox::replica {
class EventSink;
}

namespace boost::asio {
class io_context;
}
namespace secbox::protocol {
class Router;
}

namespace secbox::update {

struct UpdateSettings {
  std::string root;  // the versions tree (VersionStore); "" or none there: updates unavailable
  std::string public_key_file;  // /etc/secbox/update.pub
  std::string ca_file;          // the tunnel's extra CA (CLOUD_CA_FILE)
  std::string env_file;         // secbox.env, kept as the known-good bundle
  std::string bundle_dir;       // <state>/known-good
  std::string running_version;  // running_version() below
  bool paired = false;          // a paired box must reach welcome to pass its trial
  std::chrono::seconds trial{120};
  std::chrono::seconds deadline{300};
  int download_tries = 3;
  // Refused offers (and other failures before a switch) queue at most one
  // update_result per this interval; the others are logged.
  std::chrono::seconds refusal_report_interval{60};
  // How long a commit waits for secbox-recover's lock on the tree.
  std::chrono::milliseconds lock_wait{10000};
  std::chrono::milliseconds retry_pause{2000};
};

struct UpdateHooks {
  // control.json's verdict on update.apply: ok, Errc::forbidden or
  // Errc::unavailable with the sentence the refusal carries.
  std::function<Result<void>()> permission;
  // Runs the contract migrations held back during the trial.
  std::function<void(std::function<void(Result<void>)>)> finish_migrations;
  // The switch is made: stop and start again (into the new `current`).
  std::function<void(const std::string& why)> restart;
};

// The version this process is: its built-in version (update/built_in.hpp),
// never a folder's name or one that came with an update.
std::string running_version();

// scripts/secbox-recover, as this binary carries it (secbox recover-script).
std::string_view recover_script();

// <root> when this binary runs from <root>/versions/<v>/secbox, else "".
std::string versions_root_of_this_binary();
// The guard app that came with this binary: web/ beside it (a version's
// folder), else /usr/local/share/secbox/web (a box installed before bundles).
std::string web_dir_of_this_binary();

// The versions tree: the configured one (SECBOX_VERSIONS_DIR), else the one
// this binary runs from.
std::string versions_root(const std::string& configured);

// Whether this start is the trial of the running version, so that the
// database holds back contract migrations (before the loop runs: a small read).
bool on_trial(const std::string& root, const std::string& running);

class UpdateService final : public Component {
 public:
  // Outcomes go to `events` as update_result (§7.6).
  UpdateService(boost::asio::io_context& loop, protocol::Router& router, replica::EventSink& events,
                UpdateSettings settings, UpdateHooks hooks);
  ~UpdateService() override;

  std::string_view name() const override { return "update"; }
  void start() override;  // after the queue is up
  void stop(std::function<void()> on_stopped) override;

  bool busy() const;
  // The state at start has been read (update.apply is answered busy before).
  bool ready() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::update
