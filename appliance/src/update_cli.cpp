#include "update_cli.hpp"

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
#include "common/pin_hash.hpp"
#include "common/process.hpp"
#include "common/time.hpp"
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

constexpr const char* kUpdateHelp = R"(Usage: secbox update --file BIN --signature SIG --version V [--no-restart]

Updates this box from files, for a box without a tunnel: BIN is checked
against SIG (the base64 Ed25519 signature of its bytes, or the 64 raw bytes)
with the key install.sh pinned (/etc/secbox/update.pub), staged as version V
beside the running one, and made current; then secbox.service is restarted
(unless --no-restart) and V runs on trial, as after update.apply: it becomes
the known-good version after its trial, or secbox-recover starts the previous
one again. Exit 0 once switched, 1 when a check fails (nothing changed), 2 for
bad usage.
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
  if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) return Error{Errc::invalid, from + " is not a file"};
  if (static_cast<std::uint64_t>(st.st_size) > update::kMaxUpdateBytes) {
    return Error{Errc::too_large, from + " is larger than an update may be"};
  }
  std::string path = root + "/.cli-update-XXXXXX";
  const int out = ::mkostemp(path.data(), O_CLOEXEC);
  if (out < 0) return Error{Errc::io, "cannot make a file in " + root + ": " + std::strerror(errno)};
  struct Close close_out{out};
  char buf[1 << 16];
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    total += n > 0 ? static_cast<std::uint64_t>(n) : 0;
    if (n < 0 || total > update::kMaxUpdateBytes || ::write(out, buf, static_cast<std::size_t>(n)) != n) {
      ::unlink(path.c_str());
      return Error{Errc::io, "cannot copy " + from + (n < 0 ? std::string(": ") + std::strerror(errno) : "")};
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

}  // namespace

int cmd_version(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") return out << kVersionHelp, 0;
    return err << "secbox version: unexpected argument " << a << "\n", 2;
  }
  log::configure(log::Options{false, log::Level::error});
  auto s = setup();
  const std::string root = s ? s.value().root : update::versions_root_of_this_binary();
  out << "secbox " << update::running_version(root, SECBOX_VERSION_STRING) << "\n";
  if (root.empty()) return 0;
  update::VersionStore store(root);
  out << "versions: " << root << "\n";
  out << "current: " << store.current().value_or("none") << "\n";
  out << "known-good: " << store.known_good().value_or("none") << "\n";
  out << "staged:";
  for (const auto& v : store.versions()) out << " " << v;
  out << "\n";
  auto state = update::load_state(root);
  if (!state) {
    out << "update: unreadable (" << state.error().message << ")\n";
  } else if (state.value()) {
    const auto& st = *state.value();
    out << "update: " << st.from << " -> " << st.to << ", ";
    if (st.phase == "trial") {
      out << "on trial since " << when(st.switched_at) << ", rolled back unless it passes by " << when(st.deadline)
          << " (starts: " << st.starts << ")\n";
    } else {
      out << "in its " << st.phase << "\n";
    }
  }
  for (const auto& o : update::load_outcomes(root)) {
    out << "to report: " << o.outcome.from << " -> " << o.outcome.to << " " << o.outcome.phase << ": "
        << o.outcome.detail << "\n";
  }
  return 0;
}

int cmd_update(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string file, signature_file, version;
  bool restart = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) return false;
      into = args[++i];
      return true;
    };
    if (a == "--help" || a == "-h") return out << kUpdateHelp, 0;
    if (a == "--file" && value(file)) continue;
    if (a == "--signature" && value(signature_file)) continue;
    if (a == "--version" && value(version)) continue;
    if (a == "--no-restart") {
      restart = false;
      continue;
    }
    return err << "secbox update: unexpected argument " << a << "\n" << kUpdateHelp, 2;
  }
  if (file.empty() || signature_file.empty() || version.empty()) {
    return err << "secbox update: --file, --signature and --version are required\n" << kUpdateHelp, 2;
  }
  if (!update::VersionStore::valid_version(version)) {
    return err << "secbox update: \"" << version.substr(0, 64) << "\" is not a version name\n", 2;
  }
  log::configure(log::Options{false, log::Level::error});
  auto s = setup();
  if (!s) return err << "secbox update: bad configuration: " << s.error().message << "\n", 2;
  const Config& c = s.value().config;
  const std::string& root = s.value().root;
  if (root.empty()) {
    return err << "secbox update: this secbox does not run from a versions folder (install.sh lays one out; or set "
                  "SECBOX_VERSIONS_DIR)\n",
           1;
  }
  update::VersionStore store(root);
  const std::string from = store.current().value_or(SECBOX_VERSION_STRING);
  if (from == version) return err << "secbox update: version " << version << " is already current\n", 1;
  if (auto st = update::load_state(root); !st || st.value()) {
    return err << "secbox update: an update is under way or on trial (secbox version says which); try again once it "
                  "has ended\n",
           1;
  }
  auto key = read_file(c.update_key_file, 64 * 1024);
  if (!key) return err << "secbox update: no update key at " << c.update_key_file << ": " << key.error().message << "\n", 1;
  auto sig = read_file(signature_file, 4096);
  if (!sig) return err << "secbox update: cannot read " << signature_file << ": " << sig.error().message << "\n", 1;
  std::string sig_b64 = sig.value();
  if (sig_b64.size() == 64 && !base64_decode(sig_b64)) {
    sig_b64 = base64_encode(sig_b64);  // the raw signature (openssl pkeyutl -sign writes it so)
  }
  while (!sig_b64.empty() && (sig_b64.back() == '\n' || sig_b64.back() == '\r' || sig_b64.back() == ' ')) {
    sig_b64.pop_back();
  }
  // The file is opened once: its bytes are copied through that one
  // descriptor into a private file, and that copy is what is checked and
  // staged, so nothing can change between the check and the copy.
  auto copy = private_copy(file, root);
  if (!copy) return err << "secbox update: " << copy.error().message << "\n", 1;
  const std::string checked = copy.value();
  struct Unlink {
    std::string path;
    ~Unlink() { ::unlink(path.c_str()); }
  } remove_copy{checked};
  struct stat st {};
  if (::stat(checked.c_str(), &st) != 0) return err << "secbox update: the copy of " << file << " is gone\n", 1;
  auto sha = update::file_sha256(checked);
  if (!sha) return err << "secbox update: " << sha.error().message << "\n", 1;
  auto verified = update::verify_update(checked, update::Expected{static_cast<std::uint64_t>(st.st_size), sha.value(), sig_b64},
                                        key.value());
  if (!verified) return err << "secbox update: refused: " << verified.error().message << "\n", 1;
  out << "Verified " << file << " (" << st.st_size << " bytes, sha256 " << sha.value() << ") with " << c.update_key_file
      << ".\n";
  if (auto staged = store.stage(version, checked); !staged) {
    return err << "secbox update: " << staged.error().message << "\n", 1;
  }
  update::UpdateState state{random_uuid(), from, version, "trial"};
  state.switched_at =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  state.deadline = state.switched_at + c.update_deadline_s;
  state.trial_s = c.update_trial_s;
  if (auto w = update::save_state(root, state); !w) return err << "secbox update: " << w.error().message << "\n", 1;
  give_to_owner(root, {root + "/versions/" + version, store.binary(version), update::state_path(root)});
  if (auto sw = store.set_current(version); !sw) {
    update::remove_state(root);
    return err << "secbox update: " << sw.error().message << "\n", 1;
  }
  give_to_owner(root, {root + "/current"});
  out << "Switched " << from << " -> " << version << "; it is on trial until it has run " << c.update_trial_s
      << " s (by " << when(state.deadline) << "), else " << from << " starts again.\n";
  struct stat sd {};
  if (!restart || ::stat("/run/systemd/system", &sd) != 0) {
    out << "Restart secbox to start version " << version << " (systemctl restart secbox.service).\n";
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
