#include "update/update_service.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/atomic_file.hpp"
#include "common/blocking.hpp"
#include "common/http_client.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "protocol/held_replies.hpp"
#include "protocol/router.hpp"
#include "update/state.hpp"
#include "update/versions.hpp"

namespace secbox::update {
namespace {

using SteadyClock = std::chrono::steady_clock;
using WallClock = std::chrono::system_clock;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(WallClock::now().time_since_epoch()).count();
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return {};
  return buf;
}

// What a failed step answers and reports.
struct Failure {
  std::string phase;               // §7.6
  protocol::ErrorCode code;        // the reply's error code
  std::string message;
};

struct Request {
  std::string attempt, from, to, url, sha256, signature;
  std::uint64_t size = 0;
};

std::string downloads_dir(const std::string& root) { return root + "/downloads"; }

// Leftover partial downloads of other versions: an update asked again resumes
// its own, and nothing else stays.
void remove_other_downloads(const std::string& root, const std::string& keep) {
  const std::string dir = downloads_dir(root);
  if (auto* d = ::opendir(dir.c_str())) {
    std::vector<std::string> gone;
    while (auto* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != ".." && name != keep) gone.push_back(dir + "/" + name);
    }
    ::closedir(d);
    for (const auto& p : gone) ::unlink(p.c_str());
  }
}

}  // namespace

std::string running_version(const std::string& root, const std::string& built_in) {
  if (root.empty()) return built_in;
  const std::string exe = real_path("/proc/self/exe");
  const std::string versions = real_path(root + "/versions");
  if (exe.empty() || versions.empty() || exe.rfind(versions + "/", 0) != 0) return built_in;
  const std::string rest = exe.substr(versions.size() + 1);  // <v>/secbox
  const auto slash = rest.find('/');
  if (slash == std::string::npos || rest.substr(slash) != "/secbox") return built_in;
  const std::string v = rest.substr(0, slash);
  return VersionStore::valid_version(v) ? v : built_in;
}

std::string versions_root_of_this_binary() {
  std::string exe = real_path("/proc/self/exe");
  for (int i = 0; i < 2 && !exe.empty(); ++i) {
    const auto slash = exe.rfind('/');
    exe = slash == std::string::npos ? std::string() : exe.substr(0, slash);
  }
  const auto slash = exe.rfind('/');
  if (exe.empty() || slash == std::string::npos || exe.substr(slash + 1) != "versions") return {};
  return exe.substr(0, slash);
}

std::string versions_root(const std::string& configured) {
  return configured.empty() ? versions_root_of_this_binary() : configured;
}

bool on_trial(const std::string& root, const std::string& running) {
  if (root.empty()) return false;
  auto state = load_state(root);
  if (!state || !state.value()) return false;
  const UpdateState& s = *state.value();
  VersionStore store(root);
  return s.phase == "trial" && s.to == running && store.current() == running && store.known_good() != running;
}

struct UpdateService::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& l, UpdateSettings s, UpdateHooks h)
      : loop(l), settings(std::move(s)), hooks(std::move(h)), pool(l, 1), commit_timer(l) {}

  boost::asio::io_context& loop;
  UpdateSettings settings;
  UpdateHooks hooks;
  BlockingPool pool;  // one update step at a time
  boost::asio::steady_timer commit_timer;
  log::Logger log{"update"};
  protocol::HeldReplies held;
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  const SteadyClock::time_point started_at = SteadyClock::now();
  bool applying = false;       // an update.apply between its request and its switch
  std::optional<UpdateState> trial;  // this run is the trial of `trial->to`
  bool looked = false;        // the state at start has been read
  bool others_trial = false;          // a trial this version does not run: secbox-recover's
  bool welcomed = false;
  bool committing = false;
  bool stopping = false;
  int in_flight = 0;
  std::function<void()> on_stopped;

  template <class Fn, class Done>
  void run(Fn fn, Done done) {
    ++in_flight;
    pool.run(std::move(fn), [self = shared_from_this(), done = std::move(done)](auto result) mutable {
      --self->in_flight;
      if (self->stopping) return self->maybe_stopped();
      done(std::move(result));
    });
  }
  // A small blocking job whose end nobody waits for (removing a file).
  template <class Fn>
  void forget(Fn fn) {
    run(
        [fn = std::move(fn)] {
          fn();
          return true;
        },
        [](bool) {});
  }

  void maybe_stopped() {
    if (stopping && in_flight == 0 && on_stopped) {
      auto f = std::move(on_stopped);
      on_stopped = nullptr;
      f();
    }
  }

  bool installed = false;  // a versions tree with `current` (read at start, on the worker)

  // ---- at start ------------------------------------------------------------

  struct Found {
    Result<std::optional<UpdateState>> state = std::optional<UpdateState>{};
    std::vector<StoredOutcome> outcomes;
    std::optional<std::string> current, known_good;
  };

  void look() {
    if (settings.root.empty()) {
      looked = true;
      return;
    }
    run(
        [root = settings.root] {
          Found f;
          f.state = load_state(root);
          f.outcomes = load_outcomes(root);
          VersionStore store(root);
          f.current = store.current();
          f.known_good = store.known_good();
          return f;
        },
        [this](Found f) { on_found(std::move(f)); });
  }

  void on_found(Found f) {
    looked = true;
    installed = f.current.has_value();
    for (auto& s : f.outcomes) report_stored(std::move(s));
    if (!f.state) {
      log.error("The update state file cannot be read; it is removed.", {{"reason", f.state.error().message}});
      forget([root = settings.root] { remove_state(root); });
      return;
    }
    if (!f.state.value()) return;
    UpdateState s = *f.state.value();
    UpdateOutcome o{s.attempt, s.from, s.to, false, s.phase, ""};
    if (s.phase != "trial") {
      o.detail = "the box restarted during the " + s.phase + " of version " + s.to + "; version " +
                 settings.running_version + " runs and nothing was switched";
      return finish(o, "An update was cut short by a restart; nothing was switched.");
    }
    if (f.current != s.to) {
      o.phase = "switch";
      o.detail = "the box stopped before it switched to version " + s.to + "; version " + settings.running_version +
                 " runs";
      return finish(o, "An update stopped before its switch; the running version stays.");
    }
    if (settings.running_version != s.to) {
      log.warn("Version " + s.to + " is on trial but this is " + settings.running_version +
               "; secbox-recover decides what runs.");
      others_trial = true;
      return;
    }
    if (f.known_good == s.to) {
      // Committed before a restart, not yet reported.
      o.ok = true;
      o.phase = "done";
      o.detail = "version " + s.to + " passed its trial";
      return finish(o, "Version " + s.to + " is the known-good version.");
    }
    trial = s;
    log.info("Version " + s.to + " is on trial: it becomes the known-good version once it has " +
                 (settings.paired ? "been welcomed by the cloud and " : "") + "run " +
                 std::to_string(trial_length().count()) + " s; otherwise secbox-recover starts version " +
                 s.from + " again.",
             {{"from", s.from}, {"to", s.to}, {"start", s.starts}});
    maybe_commit();
  }

  std::chrono::seconds trial_length() const {
    return trial && trial->trial_s > 0 ? std::chrono::seconds(trial->trial_s) : settings.trial;
  }

  // Queues the outcome; the state file (the attempt's own) goes once it is
  // in the queue.
  void finish(const UpdateOutcome& o, const std::string& sentence, bool remove_state_file = true) {
    if (o.ok) {
      log.info(sentence, {{"from", o.from}, {"to", o.to}, {"phase", o.phase}});
    } else {
      log.warn(sentence, {{"from", o.from}, {"to", o.to}, {"phase", o.phase}, {"detail", o.detail}});
    }
    queue(o, [this, remove_state_file](bool queued) {
      if (queued && remove_state_file) forget([root = settings.root] { remove_state(root); });
    });
  }

  void report_stored(StoredOutcome s) {
    const UpdateOutcome& o = s.outcome;
    if (o.phase == "rollback") {
      log.warn("Version " + o.to + " was rolled back by secbox-recover; version " + o.from + " runs again.",
               {{"detail", o.detail}});
    } else if (o.phase == "rollback-failed") {
      log.error("secbox-recover could not roll back version " + o.to + ".", {{"detail", o.detail}});
    } else {
      log.info("An update outcome recorded by secbox-recover is reported.", {{"phase", o.phase}});
    }
    queue(o, [this, file = s.file](bool queued) {
      if (queued) forget([file] { remove_outcome(file); });
    });
  }

  void queue(const UpdateOutcome& o, std::function<void(bool)> done) {
    if (!hooks.queue_result) return done(false);
    hooks.queue_result(o.client_id(), o.data(), [self = shared_from_this(), done = std::move(done)](bool queued) {
      if (!queued) self->log.error("An update_result could not be queued; it is reported at the next start.");
      if (!self->stopping) done(queued);
    });
  }

  // ---- the trial -----------------------------------------------------------

  void maybe_commit() {
    if (!trial || committing || stopping) return;
    if (settings.paired && !welcomed) return;
    const auto ran = SteadyClock::now() - started_at;
    if (ran < trial_length()) {
      commit_timer.expires_after(trial_length() - ran);
      commit_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->maybe_commit();
      });
      return;
    }
    commit();
  }

  void commit() {
    committing = true;
    auto then = [this, self = shared_from_this()](Result<void> migrated) {
      if (stopping) return;  // the next start commits (known-good has not moved)
      if (!migrated) {
        log.error("The contract migrations failed; they are tried again at the next start.",
                  {{"reason", migrated.error().message}});
      }
      run(
          [root = settings.root, to = trial->to, from = trial->from, env = settings.env_file,
           bundle = settings.bundle_dir]() -> Result<void> {
            VersionStore store(root);
            if (auto r = store.set_known_good(to); !r) return r;
            (void)save_bundle(env, bundle);
            store.prune({to, from});  // one version back stays, for a rollback by hand
            return ok();
          },
          [this](Result<void> r) {
            if (!r) {
              committing = false;
              log.error("The trial passed but the known-good link could not be moved; trying again in 30 s.",
                        {{"reason", r.error().message}});
              commit_timer.expires_after(std::chrono::seconds(30));
              commit_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
                if (!ec) self->commit();
              });
              return;
            }
            UpdateOutcome o{trial->attempt, trial->from, trial->to, true, "done",
                            "version " + trial->to + " passed its trial and is the known-good version"};
            trial.reset();
            committing = false;
            finish(o, "Version " + o.to + " passed its trial; it is now the known-good version.");
          });
    };
    if (hooks.finish_migrations) return hooks.finish_migrations(then);
    then(ok());
  }

  static Result<void> save_bundle(const std::string& env_file, const std::string& bundle_dir) {
    if (env_file.empty() || bundle_dir.empty()) return ok();
    auto text = read_file(env_file, 1 << 20);
    if (!text) return text.error();
    auto kept = read_file(bundle_dir + "/secbox.env", 1 << 20);
    if (kept && kept.value() == text.value()) return ok();
    if (::mkdir(bundle_dir.c_str(), 0700) != 0 && errno != EEXIST) return Error{Errc::io, "cannot make " + bundle_dir};
    return write_file_atomically(bundle_dir + "/secbox.env", text.value(), AtomicWriteOptions{0600, std::nullopt});
  }

  // ---- update.apply --------------------------------------------------------

  void apply(const protocol::Envelope& req, protocol::Reply reply) {
    const auto& p = req.payload;
    Request r;
    r.to = p.value("version", "");
    r.url = p.value("url", "");
    r.sha256 = p.value("sha256", "");
    r.signature = p.value("signature", "");
    r.size = p.value("size", std::uint64_t{0});
    r.from = settings.running_version;
    if (hooks.permission) {
      auto [verdict, sentence] = hooks.permission();
      if (verdict != Permission::allowed) {
        log.info("Refused an update.apply.", {{"verdict", verdict == Permission::forbidden ? "forbidden" : "unavailable"}});
        return reply.error(verdict == Permission::forbidden ? protocol::ErrorCode::forbidden
                                                            : protocol::ErrorCode::unavailable,
                           sentence);
      }
    }
    if (!looked) return reply.error(protocol::ErrorCode::busy, "the box is starting; ask again in a moment");
    if (applying || trial || committing || others_trial) {
      return reply.error(protocol::ErrorCode::busy, trial ? "version " + trial->to + " is on trial"
                                                          : "an update is under way");
    }
    // A refused field is an attempt too: answered, and reported with its phase.
    auto bad = [&](const std::string& phase, const std::string& why) {
      reply.error(protocol::ErrorCode::invalid_args, why);
      const std::string to = VersionStore::valid_version(r.to) ? r.to : "invalid";
      finish(UpdateOutcome{random_uuid(), r.from, to, false, phase, why},
             "An update.apply was refused: " + why + ".", false);
    };
    if (!VersionStore::valid_version(r.to)) {
      return bad("verify", "version: 1 to 64 of letters, digits, '.', '+', '_', '-'");
    }
    if (r.to == r.from) return bad("verify", "version " + r.to + " is the one running");
    if (r.url.rfind("https://", 0) != 0 || r.url.size() > 2048 ||
        r.url.find_first_of(" \t\r\n\\") != std::string::npos) {
      return bad("download", "url must be an https:// URL");
    }
    if (!is_sha256_hex(r.sha256)) return bad("verify", "sha256 must be 64 hexadecimal digits");
    if (r.size == 0 || r.size > settings.max_bytes) {
      return bad("verify", "size must be 1 to " + std::to_string(settings.max_bytes) + " bytes");
    }
    if (r.signature.empty() || r.signature.size() > 200) {
      return bad("verify", "signature must be a base64 Ed25519 signature");
    }
    if (!installed) {
      return reply.error(protocol::ErrorCode::unavailable,
                         "this box was not installed with versions side by side (install.sh); it cannot update itself");
    }
    r.attempt = random_uuid();
    applying = true;
    cancel->store(false);
    const auto id = held.hold(std::move(reply));
    log.info("Updating: downloading version " + r.to + ".",
             {{"from", r.from}, {"to", r.to}, {"size", static_cast<double>(r.size)}, {"attempt", r.attempt}});
    run([s = settings, r, cancel = cancel] { return prepare(s, r, cancel); },
        [this, r, id](std::optional<Failure> failed) {
          auto reply = held.take(id);
          if (failed) {
            applying = false;
            if (reply) reply->error(failed->code, failed->message);
            UpdateOutcome o{r.attempt, r.from, r.to, false, failed->phase, failed->message};
            return finish(o, "The update to version " + r.to + " failed at its " + failed->phase +
                                 "; nothing was switched.");
          }
          if (reply) reply->send("ack");
          switch_to(r);
        });
  }

  // Worker: download, verify, stage. Nothing outside <root> changes, and
  // `current` is not touched.
  static std::optional<Failure> prepare(const UpdateSettings& s, const Request& r,
                                        const std::shared_ptr<std::atomic<bool>>& cancel) {
    UpdateState st{r.attempt, r.from, r.to, "download"};
    if (auto w = save_state(s.root, st); !w) return Failure{"download", protocol::ErrorCode::internal, w.error().message};
    auto key = read_file(s.public_key_file, 64 * 1024);
    if (!key) {
      return Failure{"verify", protocol::ErrorCode::unavailable,
                     "no update key is pinned at " + s.public_key_file + " (install.sh --update-key)"};
    }
    const std::string dir = downloads_dir(s.root);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Failure{"download", protocol::ErrorCode::internal, "cannot make " + dir};
    }
    const std::string part = dir + "/" + r.to + ".part";
    remove_other_downloads(s.root, r.to + ".part");
    DownloadRequest dl;
    dl.url = r.url;
    dl.path = part;
    dl.ca_file = s.ca_file;
    dl.max_bytes = r.size;
    dl.cancel = [cancel] { return cancel->load(); };
    Result<Downloaded> got = Error{Errc::network, "not tried"};
    for (int attempt = 1; attempt <= std::max(1, s.download_tries); ++attempt) {
      got = download_file(dl);
      if (got && got.value().bytes == r.size) break;
      if (got) got = Error{Errc::network, "the transfer ended after " + std::to_string(got.value().bytes) + " of " +
                                          std::to_string(r.size) + " bytes"};
      if (got.error().code != Errc::network || cancel->load()) break;
      if (attempt < s.download_tries) std::this_thread::sleep_for(s.retry_pause);
    }
    if (!got) {
      if (got.error().code == Errc::too_large) {
        return Failure{"verify", protocol::ErrorCode::invalid_args,
                       "the file is larger than the announced size (" + std::to_string(r.size) + " bytes)"};
      }
      return Failure{"download", protocol::ErrorCode::unavailable, "the download failed: " + got.error().message};
    }
    st.phase = "verify";
    (void)save_state(s.root, st);
    auto verified = verify_update(part, Expected{r.size, r.sha256, r.signature}, key.value(), s.max_bytes);
    if (!verified) {
      ::unlink(part.c_str());
      return Failure{"verify", protocol::ErrorCode::invalid_args, verified.error().message};
    }
    st.phase = "stage";
    (void)save_state(s.root, st);
    auto staged = VersionStore(s.root).stage(r.to, part);
    ::unlink(part.c_str());
    if (!staged) return Failure{"stage", protocol::ErrorCode::internal, staged.error().message};
    return std::nullopt;
  }

  void switch_to(const Request& r) {
    run(
        [s = settings, r]() -> Result<void> {
          UpdateState st{r.attempt, r.from, r.to, "trial"};
          st.switched_at = unix_now();
          st.deadline = st.switched_at + s.deadline.count();
          st.trial_s = s.trial.count();
          // The trial is on record before the link moves: a power cut between
          // the two leaves a state that names the switch, and the old version.
          if (auto w = save_state(s.root, st); !w) return w;
          return VersionStore(s.root).set_current(r.to);
        },
        [this, r](Result<void> switched) {
          applying = false;
          if (!switched) {
            UpdateOutcome o{r.attempt, r.from, r.to, false, "switch", switched.error().message};
            return finish(o, "The switch to version " + r.to + " failed; version " + r.from + " stays.");
          }
          log.info("Switched to version " + r.to + "; restarting into its trial.", {{"from", r.from}, {"to", r.to}});
          if (hooks.restart) hooks.restart("the switch to version " + r.to);
        });
  }
};

UpdateService::UpdateService(boost::asio::io_context& loop, UpdateSettings settings, UpdateHooks hooks)
    : impl_(std::make_shared<Impl>(loop, std::move(settings), std::move(hooks))) {}

UpdateService::~UpdateService() {
  impl_->cancel->store(true);
  impl_->pool.shutdown();
}

void UpdateService::start() {
  impl_->stopping = false;
  impl_->look();
}

void UpdateService::stop(std::function<void()> on_stopped) {
  auto& i = *impl_;
  i.stopping = true;
  i.cancel->store(true);
  i.commit_timer.cancel();
  i.on_stopped = std::move(on_stopped);
  i.maybe_stopped();
}

void UpdateService::attach(protocol::Router& router) {
  router.on_request("update.apply",
                    [w = std::weak_ptr<Impl>(impl_)](const protocol::Envelope& req, protocol::Reply reply) {
                      if (auto self = w.lock()) self->apply(req, std::move(reply));
                    });
}

void UpdateService::detach() {
  impl_->held.release_all();
}

void UpdateService::on_welcomed() {
  auto& i = *impl_;
  i.welcomed = true;
  if (i.trial) return i.maybe_commit();
  // Not on trial: the settings the cloud just accepted are the known-good bundle.
  if (!i.settings.root.empty() && !i.stopping) {
    i.run([env = i.settings.env_file, bundle = i.settings.bundle_dir] { return Impl::save_bundle(env, bundle); },
          [&i](Result<void> r) {
            if (!r) i.log.warn("secbox.env could not be kept as the known-good bundle.", {{"reason", r.error().message}});
          });
  }
}

bool UpdateService::ready() const { return impl_->looked; }

bool UpdateService::busy() const { return impl_->applying || impl_->trial.has_value(); }

}  // namespace secbox::update
