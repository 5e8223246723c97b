#include "update/update_service.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
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
#include "common/lifetime.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "protocol/held_replies.hpp"
#include "protocol/router.hpp"
#include "update/built_in.hpp"
#include "update/manifest.hpp"
#include "update/state.hpp"
#include "update/versions.hpp"
#include "replica/ports.hpp"

namespace secbox::update {
namespace {

using SteadyClock = std::chrono::steady_clock;
using WallClock = std::chrono::system_clock;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(WallClock::now().time_since_epoch())
      .count();
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return {};
  return buf;
}

// What a failed step answers and reports.
struct Failure {
  std::string phase;         // §7.6
  protocol::ErrorCode code;  // the reply's error code
  std::string message;
};

struct Request {
  std::string attempt, from, url, manifest, signature;
};

// What the worker made of an update.apply.
struct Prepared {
  std::optional<Failure> failure;
  std::string to = "unknown";  // the manifest's version, once it is read
};

protocol::ErrorCode reply_code(Errc e) {
  switch (e) {
    case Errc::invalid:
      return protocol::ErrorCode::invalid_args;
    case Errc::forbidden:
      return protocol::ErrorCode::forbidden;
    case Errc::unavailable:
      return protocol::ErrorCode::unavailable;
    default:
      return protocol::ErrorCode::internal;
  }
}

// Holds <root>/update.lock, which secbox-recover takes too (flock(1)) around
// its look at the trial and its rollback: a commit and a rollback never
// interleave. Waits at most `limit`.
class TreeLock {
 public:
  TreeLock(const std::string& root, std::chrono::milliseconds limit) {
    fd_ = ::open((root + "/update.lock").c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0) return;
    const auto until = SteadyClock::now() + limit;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (SteadyClock::now() >= until) {
        ::close(fd_);
        fd_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~TreeLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
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

std::string running_version() { return built_in_version(); }

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

std::string web_dir_of_this_binary() {
  std::string exe = real_path("/proc/self/exe");
  const auto slash = exe.rfind('/');
  if (slash != std::string::npos) {
    const std::string web = exe.substr(0, slash) + "/web";
    struct stat st {};
    if (::stat(web.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return web;
  }
  return "/usr/local/share/secbox/web";
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
  return s.phase == "trial" && s.to == running && store.current() == running &&
         store.known_good() != running;
}

struct UpdateService::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& l, replica::EventSink& e, UpdateSettings s, UpdateHooks h)
      : loop(l), events(e), settings(std::move(s)), hooks(std::move(h)), pool(l, 1),
        commit_timer(l) {}

  boost::asio::io_context& loop;
  replica::EventSink& events;
  UpdateSettings settings;
  UpdateHooks hooks;
  BlockingPool pool;  // one update step at a time
  boost::asio::steady_timer commit_timer;
  log::Logger log{"update"};
  protocol::HeldReplies held;
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  const SteadyClock::time_point started_at = SteadyClock::now();
  bool applying = false;             // an update.apply between its request and its switch
  std::optional<UpdateState> trial;  // this run is the trial of `trial->to`
  bool looked = false;               // the state at start has been read
  bool others_trial = false;         // a trial this version does not run: secbox-recover's
  bool welcomed = false;
  bool committing = false;
  Lifetime life{loop};  // work out on the pool; stopping

  template <class Fn, class Done>
  void run(Fn fn, Done done) {
    life.begin();
    pool.run(std::move(fn),
             [self = shared_from_this(), done = std::move(done)](auto result) mutable {
               if (self->life.end()) done(std::move(result));
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
          remember_rollbacks(store, f.outcomes);
          return f;
        },
        [this](Found f) { on_found(std::move(f)); });
  }

  // Worker: a version secbox-recover rolled back is refused until a higher
  // counter (its manifest's counter goes in the ledger), and its folder goes:
  // it will not run again.
  static void remember_rollbacks(const VersionStore& store,
                                 const std::vector<StoredOutcome>& outcomes) {
    auto ledger = load_ledger(store.root());
    if (!ledger) return;
    bool changed = false;
    for (const auto& s : outcomes) {
      const auto& o = s.outcome;
      if ((o.phase != "rollback" && o.phase != "rollback-failed") ||
          !VersionStore::valid_version(o.to))
        continue;
      if (o.to == store.current() || o.to == store.known_good())
        continue;  // secbox.env restored, same version
      std::uint64_t counter = 0;
      if (auto m = parse_manifest(store.manifest_of(o.to))) counter = m.value().counter;
      auto& kept = ledger.value().rolled_back[o.to];
      if (kept < counter || kept == 0) {
        kept = std::max(kept, counter);
        changed = true;
      }
      store.remove(o.to);
    }
    if (changed) (void)save_ledger(store.root(), ledger.value());
  }

  void on_found(Found f) {
    looked = true;
    installed = f.current.has_value();
    for (auto& s : f.outcomes) report_stored(std::move(s));
    if (!f.state) {
      log.error("The update state file cannot be read; it is removed.",
                {{"reason", f.state.error().message}});
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
      o.detail = "the box stopped before it switched to version " + s.to + "; version " +
                 settings.running_version + " runs";
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
                 std::to_string(trial_length().count()) +
                 " s; otherwise secbox-recover starts version " + s.from + " again.",
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
      log.warn(sentence,
               {{"from", o.from}, {"to", o.to}, {"phase", o.phase}, {"detail", o.detail}});
    }
    queue(o, [this, remove_state_file](bool queued) {
      if (queued && remove_state_file) forget([root = settings.root] { remove_state(root); });
    });
  }

  void report_stored(StoredOutcome s) {
    const UpdateOutcome& o = s.outcome;
    if (o.phase == "rollback") {
      log.warn("Version " + o.to + " was rolled back by secbox-recover; version " + o.from +
                   " runs again.",
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
    events.enqueue(
        replica::OutboundEvent{o.client_id(), "update_result",
                               format_rfc3339(std::chrono::system_clock::now()), o.data()},
        [self = shared_from_this(), done = std::move(done)](Result<replica::Enqueued> r) {
          if (!r)
            self->log.error(
                "An update_result could not be queued; it is reported at the next start.",
                {{"reason", r.error().message}});
          if (!self->life.stopping()) done(r.has_value());
        });
  }

  // ---- the trial -----------------------------------------------------------

  void maybe_commit() {
    if (!trial || committing || life.stopping()) return;
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

  // The commit point is `known-good`, moved under secbox-recover's lock and
  // only before the deadline: the timer then finds the trial passed, or rolls
  // back a version that never committed, never both. The contract migrations
  // run after the move, so a rollback never meets them.
  enum class Committed { yes, too_late, failed };
  struct CommitResult {
    Committed how = Committed::failed;
    std::string why;
  };

  void commit() {
    committing = true;
    run(
        [s = settings, to = trial->to, from = trial->from,
         deadline = trial->deadline]() -> CommitResult {
          TreeLock lock(s.root, s.lock_wait);
          if (!lock.held()) return {Committed::failed, "secbox-recover holds the versions tree"};
          if (deadline > 0 && unix_now() > deadline) return {Committed::too_late, ""};
          VersionStore store(s.root);
          auto ledger = load_ledger(s.root);
          if (!ledger) return {Committed::failed, ledger.error().message};
          if (auto r = store.set_known_good(to); !r) return {Committed::failed, r.error().message};
          if (auto m = parse_manifest(store.manifest_of(to));
              m && m.value().counter > ledger.value().counter) {
            ledger.value().counter = m.value().counter;
            if (auto w = save_ledger(s.root, ledger.value()); !w) {
              return {Committed::yes, "the counter could not be kept: " + w.error().message};
            }
          }
          return {Committed::yes, ""};
        },
        [this](CommitResult r) {
          if (r.how == Committed::too_late) {
            committing = false;
            log.error("Version " + trial->to +
                      " passed its trial after its deadline; it is not committed, and "
                      "secbox-recover starts version " +
                      trial->from + " again.");
            return;
          }
          if (r.how == Committed::failed) {
            committing = false;
            log.error(
                "The trial passed but the known-good link could not be moved; trying again in 30 "
                "s.",
                {{"reason", r.why}});
            commit_timer.expires_after(std::chrono::seconds(30));
            commit_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
              if (!ec) self->commit();
            });
            return;
          }
          if (!r.why.empty()) log.error("Committed, but " + r.why + ".");
          after_commit();
        });
  }

  void after_commit() {
    auto then = [this, self = shared_from_this()](Result<void> migrated) {
      if (life.stopping())
        return;  // known-good has moved: the next start runs them, and reports the commit
      if (!migrated) {
        log.error("The contract migrations failed; they are tried again at the next start.",
                  {{"reason", migrated.error().message}});
      }
      run(
          [root = settings.root, to = trial->to, from = trial->from, env = settings.env_file,
           bundle = settings.bundle_dir] {
            VersionStore store(root);
            (void)save_bundle(env, bundle);
            // Versions that will never run again go: those below the box's
            // counter. The previous one stays when it may still run.
            std::vector<std::string> keep{to};
            auto ledger = load_ledger(root);
            auto m = parse_manifest(store.manifest_of(from));
            if (ledger && m && m.value().counter >= ledger.value().counter) keep.push_back(from);
            store.prune(keep);
            return true;
          },
          [this](bool) {
            UpdateOutcome o{
                trial->attempt,
                trial->from,
                trial->to,
                true,
                "done",
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
    if (::mkdir(bundle_dir.c_str(), 0700) != 0 && errno != EEXIST)
      return Error{Errc::io, "cannot make " + bundle_dir};
    return write_file_atomically(bundle_dir + "/secbox.env", text.value(),
                                 AtomicWriteOptions{0600, std::nullopt});
  }

  // ---- update.apply --------------------------------------------------------

  // Failures before a switch queue at most one update_result per interval
  // (a looping cloud would fill the queue); the others are logged.
  SteadyClock::time_point last_refusal_report{};
  int refusals_unreported = 0;

  void report_refusal(UpdateOutcome o, const std::string& sentence) {
    const auto now = SteadyClock::now();
    if (last_refusal_report != SteadyClock::time_point{} &&
        now - last_refusal_report < settings.refusal_report_interval) {
      // Counted, and logged once per interval: a looping cloud floods neither
      // the queue nor the journal.
      if (refusals_unreported++ == 0) {
        log.warn(
            sentence +
                " (neither reported nor logged: the next refusals of this minute are only counted)",
            {{"to", o.to}, {"phase", o.phase}});
      }
      return;
    }
    last_refusal_report = now;
    if (refusals_unreported > 0) {
      o.detail +=
          " (and " + std::to_string(refusals_unreported) + " refused before it, not reported)";
      refusals_unreported = 0;
    }
    finish(o, sentence);
  }

  void apply(const protocol::Envelope& req, protocol::Reply reply) {
    const auto& p = req.payload;
    Request r;
    r.from = settings.running_version;
    if (hooks.permission) {
      auto allowed = hooks.permission();
      if (!allowed) {
        log.info("Refused an update.apply.",
                 {{"verdict", std::string(to_string(allowed.error().code))}});
        return reply.error(allowed.error());
      }
    }
    if (!looked)
      return reply.error(protocol::ErrorCode::busy, "the box is starting; ask again in a moment");
    if (applying || trial || committing || others_trial) {
      return reply.error(protocol::ErrorCode::busy, trial ? "version " + trial->to + " is on trial"
                                                          : "an update is under way");
    }
    // A malformed field is an attempt too: answered, and reported.
    auto bad = [&](const std::string& why) {
      reply.error(protocol::ErrorCode::invalid_args, why);
      report_refusal(UpdateOutcome{random_uuid(), r.from, "unknown", false, "manifest", why},
                     "An update.apply was refused: " + why + ".");
    };
    auto text = [&](const char* k) -> std::optional<std::string> {
      auto it = p.find(k);
      if (it == p.end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    const auto manifest = text("manifest");
    const auto signature = text("signature");
    const auto url = text("url");
    if (!manifest || manifest->empty()) return bad("manifest must be a base64 string");
    if (!signature || signature->empty()) return bad("signature must be a base64 string");
    if (!url || url->rfind("https://", 0) != 0 || url->size() > 2048 ||
        url->find_first_of(" \t\r\n\\") != std::string::npos) {
      return bad("url must be an https:// URL");
    }
    if (!installed) {
      return reply.error(protocol::ErrorCode::unavailable,
                         "this box was not installed with versions side by side (install.sh); it "
                         "cannot update itself");
    }
    r.manifest = *manifest;
    r.signature = *signature;
    r.url = *url;
    r.attempt = random_uuid();
    applying = true;
    cancel->store(false);
    const auto id = held.hold(std::move(reply));
    run([s = settings, r, cancel = cancel] { return prepare(s, r, cancel); },
        [this, r, id](Prepared prepared) {
          auto reply = held.take(id);
          if (prepared.failure) {
            applying = false;
            const Failure& f = *prepared.failure;
            if (reply) reply->error(f.code, f.message);
            UpdateOutcome o{r.attempt, r.from, prepared.to, false, f.phase, f.message};
            if (f.phase == "manifest")
              return report_refusal(o, "An update.apply was refused: " + f.message + ".");
            return report_refusal(o, "The update to version " + prepared.to + " failed at its " +
                                         f.phase + "; nothing was switched: " + f.message);
          }
          if (reply) reply->send("ack");
          switch_to(r, prepared.to);
        });
  }

  // Worker: judge the manifest, download, check, stage. Nothing outside
  // <root> changes, and `current` is not touched.
  static Prepared prepare(const UpdateSettings& s, const Request& r,
                          const std::shared_ptr<std::atomic<bool>>& cancel) {
    Prepared out;
    auto fail = [&](const std::string& phase, protocol::ErrorCode code, const std::string& why) {
      out.failure = Failure{phase, code, why};
      return out;
    };
    auto key = read_file(s.public_key_file, 64 * 1024);
    if (!key) {
      return fail("manifest", protocol::ErrorCode::unavailable,
                  "no update key is pinned at " + s.public_key_file + " (install.sh --update-key)");
    }
    auto ledger = load_ledger(s.root);
    if (!ledger) return fail("manifest", protocol::ErrorCode::internal, ledger.error().message);
    BoxRecord box;
    box.running = s.running_version;
    box.counter = ledger.value().counter;
    box.rolled_back = ledger.value().rolled_back;
    box.now = unix_now();
    auto offer = check_offer(r.manifest, r.signature, key.value(), box, &out.to);
    if (!offer) return fail("manifest", reply_code(offer.error().code), offer.error().message);
    const Manifest& m = offer.value().manifest;
    out.to = m.version;

    UpdateState st{r.attempt, r.from, m.version, "download"};
    if (auto w = save_state(s.root, st); !w)
      return fail("download", protocol::ErrorCode::internal, w.error().message);
    const std::string dir = downloads_dir(s.root);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return fail("download", protocol::ErrorCode::internal, "cannot make " + dir);
    }
    // Named by the bundle's hash: a download asked again resumes only the same bytes.
    const std::string part_name = m.sha256 + ".part";
    const std::string part = dir + "/" + part_name;
    remove_other_downloads(s.root, part_name);
    DownloadRequest dl;
    dl.url = r.url;
    dl.path = part;
    dl.ca_file = s.ca_file;
    dl.max_bytes = m.size;
    dl.cancel = [cancel] { return cancel->load(); };
    Result<Downloaded> got = Error{Errc::network, "not tried"};
    for (int attempt = 1; attempt <= std::max(1, s.download_tries); ++attempt) {
      got = download_file(dl);
      if (got && got.value().bytes == m.size) break;
      if (got)
        got = Error{Errc::network, "the transfer ended after " + std::to_string(got.value().bytes) +
                                       " of " + std::to_string(m.size) + " bytes"};
      if (got.error().code != Errc::network || cancel->load()) break;
      if (attempt < s.download_tries) std::this_thread::sleep_for(s.retry_pause);
    }
    if (!got) {
      if (got.error().code == Errc::too_large) {
        ::unlink(part.c_str());
        return fail(
            "verify", protocol::ErrorCode::forbidden,
            "the bundle is larger than the manifest's size (" + std::to_string(m.size) + " bytes)");
      }
      return fail("download", protocol::ErrorCode::unavailable,
                  "the download failed: " + got.error().message);
    }
    st.phase = "verify";
    (void)save_state(s.root, st);
    // One descriptor from here on: what is checked is what is unpacked.
    const int fd = ::open(part.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ::unlink(part.c_str());
    if (fd < 0) return fail("verify", protocol::ErrorCode::internal, "cannot open the download");
    struct Close {
      int fd;
      ~Close() { ::close(fd); }
    } close_fd{fd};
    if (auto v = check_bundle(fd, m.size, m.sha256); !v) {
      return fail("verify", protocol::ErrorCode::forbidden, v.error().message);
    }
    st.phase = "stage";
    (void)save_state(s.root, st);
    auto staged = VersionStore(s.root).stage_bundle(m.version, fd, offer.value().bytes);
    if (!staged) {
      if (staged.error().code == Errc::invalid) {
        return fail("verify", protocol::ErrorCode::forbidden, staged.error().message);
      }
      return fail("stage", protocol::ErrorCode::internal, staged.error().message);
    }
    return out;
  }

  void switch_to(const Request& r, const std::string& to) {
    run(
        [s = settings, r, to]() -> Result<void> {
          UpdateState st{r.attempt, r.from, to, "trial"};
          st.switched_at = unix_now();
          st.deadline = st.switched_at + s.deadline.count();
          st.trial_s = s.trial.count();
          // The trial is on record before the link moves: a power cut between
          // the two leaves a state that names the switch, and the old version.
          if (auto w = save_state(s.root, st); !w) return w;
          return VersionStore(s.root).set_current(to);
        },
        [this, r, to](Result<void> switched) {
          applying = false;
          if (!switched) {
            UpdateOutcome o{r.attempt, r.from, to, false, "switch", switched.error().message};
            return finish(o,
                          "The switch to version " + to + " failed; version " + r.from + " stays.");
          }
          log.info("Switched to version " + to + "; restarting into its trial.",
                   {{"from", r.from}, {"to", to}});
          if (hooks.restart) hooks.restart("the switch to version " + to);
        });
  }

  // A welcome: a trial may commit now; off trial, the settings the cloud
  // just accepted become the known-good bundle.
  void welcomed_now() {
    welcomed = true;
    if (trial) return maybe_commit();
    if (settings.root.empty() || life.stopping()) return;
    run([env = settings.env_file,
         bundle = settings.bundle_dir] { return save_bundle(env, bundle); },
        [this](Result<void> r) {
          if (!r)
            log.warn("secbox.env could not be kept as the known-good bundle.",
                     {{"reason", r.error().message}});
        });
  }
};

UpdateService::UpdateService(boost::asio::io_context& loop, protocol::Router& router,
                             replica::EventSink& events, UpdateSettings settings, UpdateHooks hooks)
    : impl_(std::make_shared<Impl>(loop, events, std::move(settings), std::move(hooks))) {
  std::weak_ptr<Impl> weak = impl_;
  router.on_request("update.apply", [weak](const protocol::Envelope& req, protocol::Reply reply) {
    if (auto self = weak.lock()) self->apply(req, std::move(reply));
  });
  router.on_session({[weak](const nlohmann::json&) {
                       if (auto self = weak.lock()) self->welcomed_now();
                     },
                     nullptr});
}

UpdateService::~UpdateService() {
  impl_->cancel->store(true);
  impl_->pool.shutdown();
}

void UpdateService::start() {
  impl_->life.assert_on_loop("UpdateService::start");
  impl_->look();
}

void UpdateService::stop(std::function<void()> on_stopped) {
  auto& i = *impl_;
  i.cancel->store(true);
  i.commit_timer.cancel();
  i.life.stop(std::move(on_stopped));
}

bool UpdateService::ready() const { return impl_->looked; }

bool UpdateService::busy() const { return impl_->applying || impl_->trial.has_value(); }

}  // namespace secbox::update
