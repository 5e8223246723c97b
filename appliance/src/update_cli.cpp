#include "update_cli.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>

#include "appliance/config.hpp"
#include "common/atomic_file.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/base64.hpp"
#include "common/process.hpp"
#include "common/time.hpp"
#include "update/built_in.hpp"
#include "update/manifest.hpp"
#include "update/state.hpp"
#include "update/update_service.hpp"
#include "update/verify.hpp"
#include "update/versions.hpp"

namespace secbox::appliance {
namespace {

constexpr const char* kVersionHelp = R"(Usage: secbox version

Prints this binary's version, then, on a box installed with versions side by
side (install.sh): the versions folder, the current and known-good versions,
every staged version, and an update under way or on trial.
)";

constexpr const char* kUpdateHelp =
    R"(Usage: secbox update --manifest FILE --signature SIG --bundle FILE [--no-restart]

Updates this box from files, for a box without a tunnel, with the checks of
update.apply (cloud-protocol 7.6): the manifest (its JSON bytes, as signed) is
checked against SIG (the base64 Ed25519 signature of those bytes, or the 64
raw bytes) with the key install.sh pinned (/etc/secbox/update.pub), then its
product, target, expiry, version and counter; the bundle's size and SHA-256
are the manifest's; it is unpacked beside the running version, and its
daemon's built-in version must be the manifest's. Then it is made current,
secbox.service is restarted (unless --no-restart) and the version runs on
trial: it becomes the known-good version after its trial, or secbox-recover
starts the previous one again. Exit 0 once switched, 1 when a check fails
(nothing changed), 2 for bad usage.
)";

std::string when(std::int64_t unix_s) {
  return format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(unix_s)));
}

struct Setup {
  Config config;
  std::string root;
};

Result<Setup> setup() {
  auto config = load_config(process_environment());
  if (!config) return config.error();
  Setup s{std::move(config).value(), {}};
  s.root = update::versions_root(s.config.versions_dir);
  return s;
}

// Copies `from` through one descriptor (no link followed, a regular file of
// at most the update cap) into a new private file in the versions folder.
Result<std::string> private_copy(const std::string& from, const std::string& root) {
  const int in = ::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return Error{Errc::io, "cannot open " + from + ": " + std::strerror(errno)};
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_in{in};
  struct stat st {};
  if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode))
    return Error{Errc::invalid, from + " is not a file"};
  if (static_cast<std::uint64_t>(st.st_size) > update::kMaxBundleBytes) {
    return Error{Errc::too_large, from + " is larger than an update may be"};
  }
  std::string path = root + "/.cli-update-XXXXXX";
  const int out = ::mkostemp(path.data(), O_CLOEXEC);
  if (out < 0)
    return Error{Errc::io, "cannot make a file in " + root + ": " + std::strerror(errno)};
  struct Close close_out {
    out
  };
  char buf[1 << 16];
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    total += n > 0 ? static_cast<std::uint64_t>(n) : 0;
    if (n < 0 || total > update::kMaxBundleBytes ||
        ::write(out, buf, static_cast<std::size_t>(n)) != n) {
      ::unlink(path.c_str());
      return Error{Errc::io,
                   "cannot copy " + from + (n < 0 ? std::string(": ") + std::strerror(errno) : "")};
    }
  }
  return path;
}

// Files the CLI (root) made in the versions folder belong to its owner, the
// daemon's user, who prunes and rewrites them.
void give_to_owner(const std::string& root, const std::vector<std::string>& paths) {
  struct stat st {};
  if (::geteuid() != 0 || ::stat(root.c_str(), &st) != 0) return;
  for (const auto& p : paths) (void)::lchown(p.c_str(), st.st_uid, st.st_gid);
}

// The same for a staged version's folder and what it holds (two levels:
// secbox, manifest.json, web/ and web/'s tree are walked without following links).
void give_to_owner_tree(const std::string& root, const std::string& dir) {
  struct stat st {};
  if (::geteuid() != 0 || ::stat(root.c_str(), &st) != 0) return;
  std::vector<std::string> todo{dir};
  for (std::size_t i = 0; i < todo.size() && i < 100000; ++i) {
    const std::string p = todo[i];
    struct stat ps {};
    if (::lstat(p.c_str(), &ps) != 0) continue;
    (void)::lchown(p.c_str(), st.st_uid, st.st_gid);
    if (!S_ISDIR(ps.st_mode)) continue;
    if (DIR* d = ::opendir(p.c_str())) {
      while (auto* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") todo.push_back(p + "/" + n);
      }
      ::closedir(d);
    }
  }
}

}  // namespace

int cmd_version(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") return out << kVersionHelp, 0;
    return err << "secbox version: unexpected argument " << a << "\n", 2;
  }
  log::configure(log::Options{false, log::Level::error});
  auto s = setup();
  const std::string root = s ? s.value().root : update::versions_root_of_this_binary();
  out << "secbox " << update::running_version() << "\n";
  if (root.empty()) return 0;
  update::VersionStore store(root);
  out << "versions: " << root << "\n";
  out << "current: " << store.current().value_or("none") << "\n";
  out << "known-good: " << store.known_good().value_or("none") << "\n";
  out << "staged:";
  for (const auto& v : store.versions()) out << " " << v;
  out << "\n";
  if (auto ledger = update::load_ledger(root); ledger) {
    out << "counter: " << ledger.value().counter << "\n";
    for (const auto& [v, n] : ledger.value().rolled_back) {
      out << "rolled back: " << v << " (refused up to counter " << n << ")\n";
    }
  } else {
    out << "ledger: unreadable (" << ledger.error().message << ")\n";
  }
  auto state = update::load_state(root);
  if (!state) {
    out << "update: unreadable (" << state.error().message << ")\n";
  } else if (state.value()) {
    const auto& st = *state.value();
    out << "update: " << st.from << " -> " << st.to << ", ";
    if (st.phase == "trial") {
      out << "on trial since " << when(st.switched_at) << ", rolled back unless it passes by "
          << when(st.deadline) << " (starts: " << st.starts << ")\n";
    } else {
      out << "in its " << st.phase << "\n";
    }
  }
  for (const auto& o : update::load_outcomes(root)) {
    out << "to report: " << o.outcome.from << " -> " << o.outcome.to << " " << o.outcome.phase
        << ": " << o.outcome.detail << "\n";
  }
  return 0;
}

int cmd_update(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string manifest_file, signature_file, bundle_file;
  bool restart = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) return false;
      into = args[++i];
      return true;
    };
    if (a == "--help" || a == "-h") return out << kUpdateHelp, 0;
    if (a == "--manifest" && value(manifest_file)) continue;
    if (a == "--signature" && value(signature_file)) continue;
    if (a == "--bundle" && value(bundle_file)) continue;
    if (a == "--no-restart") {
      restart = false;
      continue;
    }
    return err << "secbox update: unexpected argument " << a << "\n" << kUpdateHelp, 2;
  }
  if (manifest_file.empty() || signature_file.empty() || bundle_file.empty()) {
    return err << "secbox update: --manifest, --signature and --bundle are required\n"
               << kUpdateHelp,
           2;
  }
  log::configure(log::Options{false, log::Level::error});
  auto s = setup();
  if (!s) return err << "secbox update: bad configuration: " << s.error().message << "\n", 2;
  const Config& c = s.value().config;
  const std::string& root = s.value().root;
  if (root.empty()) {
    return err << "secbox update: this secbox does not run from a versions folder (install.sh lays "
                  "one out; or set "
                  "SECBOX_VERSIONS_DIR)\n",
           1;
  }
  update::VersionStore store(root);
  const std::string from = update::running_version();
  if (auto st = update::load_state(root); !st || st.value()) {
    return err << "secbox update: an update is under way or on trial (secbox version says which); "
                  "try again once it "
                  "has ended\n",
           1;
  }
  auto key = read_file(c.update_key_file, 64 * 1024);
  if (!key)
    return err << "secbox update: no update key at " << c.update_key_file << ": "
               << key.error().message << "\n",
           1;
  auto manifest = read_file(manifest_file, update::kMaxManifestBytes + 1);
  if (!manifest)
    return err << "secbox update: cannot read " << manifest_file << ": " << manifest.error().message
               << "\n",
           1;
  auto sig = read_file(signature_file, 4096);
  if (!sig)
    return err << "secbox update: cannot read " << signature_file << ": " << sig.error().message
               << "\n",
           1;
  std::string sig_b64 = sig.value();
  if (sig_b64.size() == 64 && !base64_decode(sig_b64)) {
    sig_b64 = base64_encode(sig_b64);  // the raw signature (openssl pkeyutl -sign writes it so)
  }
  while (!sig_b64.empty() &&
         (sig_b64.back() == '\n' || sig_b64.back() == '\r' || sig_b64.back() == ' ')) {
    sig_b64.pop_back();
  }
  auto ledger = update::load_ledger(root);
  if (!ledger) return err << "secbox update: " << ledger.error().message << "\n", 1;
  update::BoxRecord box;
  box.running = from;
  box.counter = ledger.value().counter;
  box.rolled_back = ledger.value().rolled_back;
  box.now = std::chrono::duration_cast<std::chrono::seconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  auto offer = update::check_offer(base64_encode(manifest.value()), sig_b64, key.value(), box);
  if (!offer) return err << "secbox update: refused: " << offer.error().message << "\n", 1;
  const update::Manifest& m = offer.value().manifest;
  const std::string& version = m.version;
  // The bundle is opened once: its bytes are copied through that one
  // descriptor into a private file, and that copy is what is checked and
  // unpacked, so nothing can change between the check and the use.
  auto copy = private_copy(bundle_file, root);
  if (!copy) return err << "secbox update: " << copy.error().message << "\n", 1;
  const std::string checked = copy.value();
  const int fd = ::open(checked.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  ::unlink(checked.c_str());
  if (fd < 0) return err << "secbox update: the copy of " << bundle_file << " is gone\n", 1;
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};
  if (auto v = update::check_bundle(fd, m.size, m.sha256); !v) {
    return err << "secbox update: refused: " << v.error().message << "\n", 1;
  }
  out << "Verified the manifest of version " << version << " (counter " << m.counter << ") with "
      << c.update_key_file << ", and " << bundle_file << " (" << m.size << " bytes, sha256 "
      << m.sha256 << ").\n";
  if (auto staged = store.stage_bundle(version, fd, offer.value().bytes); !staged) {
    return err << "secbox update: " << (staged.error().code == Errc::invalid ? "refused: " : "")
               << staged.error().message << "\n",
           1;
  }
  update::UpdateState state{random_uuid(), from, version, "trial"};
  state.switched_at = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  state.deadline = state.switched_at + c.update_deadline_s;
  state.trial_s = c.update_trial_s;
  if (auto w = update::save_state(root, state); !w)
    return err << "secbox update: " << w.error().message << "\n", 1;
  give_to_owner_tree(root, root + "/versions/" + version);
  give_to_owner(root, {update::state_path(root)});
  if (auto sw = store.set_current(version); !sw) {
    update::remove_state(root);
    return err << "secbox update: " << sw.error().message << "\n", 1;
  }
  give_to_owner(root, {root + "/current"});
  out << "Switched " << from << " -> " << version << "; it is on trial until it has run "
      << c.update_trial_s << " s (by " << when(state.deadline) << "), else " << from
      << " starts again.\n";
  struct stat sd {};
  if (!restart || ::stat("/run/systemd/system", &sd) != 0) {
    out << "Restart secbox to start version " << version
        << " (systemctl restart secbox.service).\n";
    return 0;
  }
  ProcessOptions p;
  p.argv = {"systemctl", "restart", "--no-block", "secbox.service"};
  p.timeout = std::chrono::seconds(30);
  auto r = run_process(p);
  if (!r || r.value().exit_code != 0) {
    out << "Could not restart secbox.service; restart it to start version " << version << ".\n";
    return 0;
  }
  out << "Restarting secbox.service.\n";
  return 0;
}

}  // namespace secbox::appliance
